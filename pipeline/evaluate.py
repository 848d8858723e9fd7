"""Stage ``evaluate``: every trained model of the grid on the test volumes.

    python -m pipeline.evaluate        (as dvc.yaml runs it; reads params `grid`, `evaluate`, `train.device`)

Reads models/<id>/ and data/prepared/; writes evaluation/<id>/ for every model of the grid:

- ``metrics.json``: correct metrics per slice (mean over slices, empty rule in pipeline.metrics), pooled over
  all test voxels, and per volume in each scan's native geometry (the headline ``dice`` is the mean volume
  Dice there, with a bootstrap confidence interval over volumes); the paper-compatible metrics of the
  published code, computed on the working-size slices as it did;
- ``volumes.csv``: one row per test volume, native geometry and working size.

Predictions are resampled back to each scan's grid by pipeline.inference, the code path ``predict`` uses.
Training is never repeated here: changing this stage reruns only evaluation.
"""

import argparse
import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline import metrics
from pipeline.cells import Cell
from pipeline.config import PARAMS_FILE, EvaluateParams, load_params
from pipeline.dataset import PREPARED_DIR, Split, experiment_arrays, load_meta, load_native, load_split
from pipeline.errors import run_stage
from pipeline.inference import load_checkpoint, probabilities, to_native
from pipeline.outputs import read_json, replace_directory
from pipeline.train import CHECKPOINT, MODELS_DIR, select_device

EVALUATION_DIR = Path("evaluation")
VOLUME_FIELDS = ("volume", "slices", "dice", "sensitivity", "specificity", "precision", "dice_working_size")


def read_train_record(model_dir: Path) -> dict:
    return read_json(model_dir / "train.json", "train this model first (`dvc repro train`)")


@dataclass(frozen=True)
class HeldOutSet:
    """The prepared test data, read once for all models: working-size slices and where each comes from."""

    split: Split
    volume_rows: dict[str, np.ndarray]  # volume file name -> its rows in ``split``
    volume_dirs: dict[str, str]  # volume file name -> its folder under native/
    prepared_dir: Path
    _experiments: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, prepared_dir: Path) -> "HeldOutSet":
        with open(prepared_dir / "test" / "slices.csv") as handle:
            volumes = np.asarray([row["volume"] for row in csv.DictReader(handle)])
        rows = {name: np.flatnonzero(volumes == name) for name in dict.fromkeys(volumes.tolist())}
        dirs = {volume["name"]: volume["dir"] for volume in load_meta(prepared_dir)["volumes"]}
        return cls(load_split("test", prepared_dir), rows, dirs, prepared_dir)

    def experiment(self, experiment: str) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of an experiment, built once for all its models (lesion B's is a full copy)."""
        if experiment not in self._experiments:
            self._experiments[experiment] = experiment_arrays(self.split, experiment)
        return self._experiments[experiment]


def _round(values: dict) -> dict:
    return {key: (None if np.isnan(value) else round(float(value), 6)) for key, value in values.items()}


def evaluate_model(model, cell: Cell, test: HeldOutSet, params: EvaluateParams) -> tuple[dict, list[dict]]:
    """(metrics record, per-volume rows) of one model."""
    inputs, targets = test.experiment(cell.experiment)
    probs = probabilities(model, inputs)
    working = metrics.confusion(probs >= params.threshold, targets)

    rows, native_counts = [], []
    for name, index in test.volume_rows.items():
        native = load_native(test.volume_dirs[name], test.prepared_dir)
        truth = np.asarray(native.lung if cell.experiment == "lung" else native.lesion)
        prediction = to_native(probs[index], truth.shape[1], truth.shape[2], params.threshold)
        counts = metrics.confusion(prediction, truth)
        native_counts.append(counts)
        volume = metrics.scores(counts.total())
        working_dice = metrics.scores(working.select(index).total())["dice"][0]
        rows.append({"volume": name, "slices": len(index), **{k: v[0] for k, v in volume.items()},
                     "dice_working_size": working_dice})  # fmt: skip

    volume_dice = np.array([row["dice"] for row in rows])
    low, high = metrics.bootstrap_interval(volume_dice, params.bootstrap_samples, params.confidence, params.seed)
    native_all = metrics.Counts.concatenate(native_counts)
    per_volume = {name: metrics.nanmean(np.array([row[name] for row in rows])) for name in metrics.SCORES}
    record = {
        **per_volume,
        "dice_ci_low": low,
        "dice_ci_high": high,
        **{f"slice_{name}": value for name, value in metrics.mean_scores(working).items()},
        **{f"pooled_{name}": value for name, value in metrics.pooled_scores(working).items()},
        **{f"native_pooled_{name}": value for name, value in metrics.pooled_scores(native_all).items()},
        **metrics.paper_scores(working),
    }
    return _round(record), rows


def _write_volumes(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=VOLUME_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description="Evaluate every trained model of the grid on the test set.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--out", type=Path, default=EVALUATION_DIR)
    args = parser.parse_args()
    params = load_params(args.params)
    grid = params.grid
    cells = grid.cells()
    device = select_device(params.train.device)
    test = HeldOutSet.load(args.prepared)
    started, evaluated = time.perf_counter(), 0
    with replace_directory(args.out) as staging:
        for cell in tqdm(cells, desc="evaluate", unit="model"):
            model_dir = args.models / cell.id
            trained = read_train_record(model_dir)
            record = {"id": cell.id, "status": trained["status"], "error": trained.get("error", "")}
            rows: list[dict] = []
            if trained["status"] == "ok":
                model, _ = load_checkpoint(model_dir / CHECKPOINT, device)
                scores, rows = evaluate_model(model, cell, test, params.evaluate)
                record.update(scores)
                evaluated += 1
            out = staging / cell.id
            out.mkdir()
            (out / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            _write_volumes(rows, out / "volumes.csv")
    print(f"evaluate: {evaluated} of {len(cells)} models on the test set in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    run_stage(main)
