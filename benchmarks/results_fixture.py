"""A made-up results/ and figures/ of any grid size, for timing the site and for its snapshot tests.

The numbers are random, not measured: every record says ``data_source: fixture``, and every page built
from it carries the "synthetic results" banner. The fixture writes what the train and evaluate stages write
(train.json, history.csv, evaluation metrics and per-volume scores) and then runs the real aggregate stage's
code on them, so results/ has exactly the layout the site reads; figures/ is drawn with the figures stage's
own functions.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import profiles
from pipeline.core.cells import Run, grid_cells
from pipeline.core.config import parse_params
from pipeline.core.viewer import as_script
from pipeline.evaluation import viewer_data
from pipeline.evaluation.figures import filter_cells, filter_grid, intensity_histograms, mask_strip, normalised_window
from pipeline.results.aggregate import aggregate

FIXTURE_SOURCE = "fixture"
BASE_DICE = {"lung": 0.93, "lesion_a": 0.62, "lesion_b": 0.66}
VOLUMES = 9
SCORES = ("dice", "sensitivity", "specificity", "precision", "nsd", "hd95")
PREPROCESS = {"hu_offset": 500.0, "hu_scale": 500.0}  # the protocol's normalisation, as the figures stage reads it


class _FakeTest:
    """Just enough of a prepared split for the intensity histograms."""

    def __init__(self, rng: np.random.Generator, size: int = 32, count: int = 6):
        self.image = rng.normal(-0.3, 0.6, (count, size, size)).astype(np.float32)
        self.lung = (rng.random((count, size, size)) > 0.6).astype(np.uint8)
        self.lesion = (self.lung * (rng.random((count, size, size)) > 0.8)).astype(np.uint8)


def _history(rng: np.random.Generator, epochs: int, flat: bool) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    if flat:  # a run that never learned: the paper's loss stays at 1
        train = val = np.ones(epochs)
    else:
        train = 0.9 * np.exp(-epoch / (epochs / 4)) + 0.05 + rng.normal(0, 0.01, epochs)
        val = train + 0.03 + np.abs(rng.normal(0, 0.02, epochs))
    return pd.DataFrame({"epoch": epoch, "train_loss": np.round(train, 6), "val_loss": np.round(val, 6),
                         "train_seconds": 1.5, "val_seconds": 0.2})  # fmt: skip


def _volumes(rng: np.random.Generator, dice: float, predicts: bool) -> pd.DataFrame:
    def around(centre: float, spread: float) -> np.ndarray:
        return np.clip(centre + rng.normal(0, spread, VOLUMES), 0, 1).round(6)

    frame = pd.DataFrame({
        "volume": [f"{v}.nii.gz" for v in range(1, VOLUMES + 1)], "slices": 90,
        "dice": around(dice, 0.04), "sensitivity": around(dice, 0.04),
        "specificity": around(0.995, 0.002), "precision": around(dice, 0.04), "nsd": around(dice - 0.05, 0.05),
        "hd95": np.clip(30 * (1 - dice) + rng.normal(0, 1.5, VOLUMES), 0.5, None).round(4),
        "predicted_voxels": 1000 if predicts else 0, "target_voxels": 1200, "dice_working_size": around(dice, 0.04),
    })  # fmt: skip
    if not predicts:  # the empty-prediction rules: Dice, sensitivity, precision, NSD 0; HD95 the diagonal
        frame[["dice", "sensitivity", "precision", "nsd"]] = 0.0
        frame["hd95"] = 520.0
    return frame


def _write_run(folders: tuple[Path, Path], run: Run, rng, epochs: int, index: int, status: str) -> None:
    models, evaluation = folders
    cell = run.cell
    (models / run.id).mkdir(parents=True)
    (evaluation / run.id).mkdir(parents=True)
    params = int(rng.integers(4_000_000, 120_000_000))
    ok = status != "failed"
    train = {
        "id": run.id, "model_id": cell.id, "experiment": cell.experiment, "architecture": cell.architecture,
        "encoder": cell.encoder, "encoder_weights": cell.weights, "data_source": FIXTURE_SOURCE,
        "profile": "fixture", "status": "ok" if ok else "failed",
        "error": "" if ok else "TrainingFailed: non-finite loss at epoch 3 (train nan, validation nan)",
        "params": params, "trained_params": params, "gflops": round(params / 2e6, 3),
        "train_images_per_s": round(float(rng.uniform(20, 400)), 2),
        "infer_images_per_s": round(float(rng.uniform(60, 1500)), 2), "epochs": epochs,
        "best_epoch": int(rng.integers(1, epochs + 1)) if ok else None, "device": "fixture: no device",
        "train_seconds": float(epochs * 1.7), "base_seed": run.seed or 0, "seed": 1_000_000 + index,
        "loss": "dice_paper", "size": 512, "best_val_loss": 0.1, "null_val_loss": 1.0, "inputs": "fixture",
        "software": {"torch": "fixture", "threads": 1},
    }  # fmt: skip
    if ok:  # a failed run has no weights
        train["checkpoint"] = {"file": "model.safetensors", "bytes": params * 4, "sha256": f"{index:064x}",
                               "md5": f"{index:032x}"}  # fmt: skip
    (models / run.id / "train.json").write_text(json.dumps(train))
    metrics: dict = {"id": run.id, "status": train["status"], "error": train["error"], "key": "fixture",
                     "implementation": {"surface": "fixture", "library": "fixture"}}  # fmt: skip
    if ok:
        dice = float(np.clip(BASE_DICE[cell.experiment] + rng.normal(0, 0.03), 0, 1))
        volumes = _volumes(rng, dice, predicts=status != "degenerate")
        _history(rng, epochs, flat=status == "degenerate").to_csv(models / run.id / "history.csv", index=False)
        volumes.to_csv(evaluation / run.id / "volumes.csv", index=False)
        _fill_scores(metrics, volumes)
    (evaluation / run.id / "metrics.json").write_text(json.dumps(metrics))


# A submission of the fixture, with text that must reach every page as plain text (pipeline.site.format).
SUBMISSION = {
    "name": "fixture-submission", "title": "A <b>bold</b> [claim](javascript:alert(1)) | of *ours*",
    "authors": "Ada <script>alert(1)</script> Lovelace", "description": "Trained {elsewhere}; `code`.",
    "training_data": "100 slices & more", "url": "https://example.org/model?a=1&b=2", "paper": "",
}  # fmt: skip


def _write_submission(root: Path, experiment: str, rng: np.random.Generator) -> tuple[Path, Path]:
    """submissions/ and scores/ as ``pipeline.submit`` and the score stage write them, for one submission."""
    submissions, scores = root / "fixture-submissions", root / "fixture-scores"
    name = SUBMISSION["name"]
    (submissions / name).mkdir(parents=True)
    (scores / name).mkdir(parents=True)
    files = {f"{v}.nii.gz": f"{v:064x}" for v in range(1, VOLUMES + 1)}
    record = {**SUBMISSION, "experiment": experiment, "kind": "predictions", "files": files, "params_m": 12.5,
              "preprocessing": None, "data_source": FIXTURE_SOURCE, "profile": "fixture", "test_set": "0" * 64,
              "submitted": "2026-01-01T00:00:00Z"}  # fmt: skip
    (submissions / name / "submission.json").write_text(json.dumps(record))
    volumes = _volumes(rng, BASE_DICE[experiment] + 0.02, predicts=True)
    volumes.to_csv(scores / name / "volumes.csv", index=False)
    metrics = {"id": name, "status": "ok", "error": "", "key": "fixture", "data_source": FIXTURE_SOURCE,
               "profile": "fixture", "viewer": [], "implementation": {"surface": "fixture", "library": "fixture"},
               "submission": {"kind": "predictions", "files": files, "experiment": experiment}}  # fmt: skip
    _fill_scores(metrics, volumes)
    (scores / name / "metrics.json").write_text(json.dumps(metrics))
    (scores / "index.json").write_text(json.dumps({"scored": [name], "other_test_set": []}))
    return submissions, scores


def _fill_scores(metrics: dict, volumes: pd.DataFrame) -> None:
    """An evaluation record's scores from per-volume ones (made-up intervals: the fixture's are not t intervals)."""
    for name in SCORES:
        metrics[name] = round(float(volumes[name].mean()), 6)
        metrics[f"{name}_ci_low"] = round(float(volumes[name].quantile(0.1)), 6)
        metrics[f"{name}_ci_high"] = round(float(volumes[name].quantile(0.9)), 6)
        metrics[f"{name}_volumes"] = VOLUMES
    for prefix in ("slice_", "pooled_", "native_pooled_"):
        metrics.update({f"{prefix}{name}": round(min(1.0, metrics[name] + 0.01), 6) for name in SCORES[:4]})
    metrics.update(paper_dice=round(100 * min(1.0, metrics["dice"] + 0.15), 4),
                   paper_sensitivity=round(100 * metrics["precision"], 4), paper_specificity=99.5,
                   test_volumes=list(volumes["volume"]),
                   test_spacing_mm={name: [5.0, 0.7, 0.7] for name in volumes["volume"]})  # fmt: skip


def _chest(size: int, slices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A crude chest volume (slices first, HU) and its lung mask: body, two lungs, scanner noise."""
    rows, columns = np.ogrid[:size, :size]
    centre = size / 2

    def ellipse(cy, cx, ry, rx):
        return ((rows - cy) / ry) ** 2 + ((columns - cx) / rx) ** 2 <= 1

    body = ellipse(centre, centre, 0.35 * size, 0.45 * size)
    lungs = ellipse(centre, 0.3 * size, 0.22 * size, 0.12 * size) | ellipse(
        centre, 0.7 * size, 0.22 * size, 0.12 * size
    )
    image = np.where(body, 40.0, -1000.0) + np.where(lungs, -890.0, 0.0)
    volume = np.repeat(image[None], slices, axis=0) + rng.normal(0, 20, (slices, size, size))
    return volume.astype(np.float32), np.repeat(lungs[None], slices, axis=0)


def write_viewer_fixture(figures: Path, runs: list, rng: np.random.Generator, size: int, slices: int) -> None:
    """The viewer's data as the figures stage writes it: one CT, one label volume per model (its prediction:
    the truth shifted a little), at ``size`` x ``size`` x ``slices`` (already the viewer's size)."""
    folder = figures / "viewer"
    folder.mkdir(parents=True, exist_ok=True)
    ct, truth = _chest(size, slices, rng)
    spacing = (2.5, 630 * 0.7 / size, 630 * 0.7 / size)
    (folder / "ct-1.js").write_text(as_script("ct-1", viewer_data.ct_volume(ct, spacing, size)))
    for run in runs:
        prediction = np.roll(truth, int(rng.integers(-3, 4)), axis=2)
        labels = viewer_data.label_volume(prediction, truth, spacing, size)
        (folder / f"{run.id}--1.js").write_text(as_script(f"{run.id}--1", labels))
    experiments = {run.cell.experiment for run in runs}
    layout = {"labels": viewer_data.LABELS, "hu_range": viewer_data.HU_RANGE, "volumes": {"1": "1.nii.gz"},
              "models": {run.id: ["1"] for run in runs}, "typical": dict.fromkeys(experiments, "1")}  # fmt: skip
    (folder / "viewer.json").write_text(json.dumps(layout, indent=2, sort_keys=True) + "\n")


def write_results_fixture(
    root: Path,
    experiments=("lung", "lesion_a", "lesion_b"),
    architectures=("unet", "linknet", "fpn", "pspnet"),
    encoders=("resnet18", "mobilenet_v2"),
    weights=("random", "imagenet"),
    epochs: int = 10,
    seed: int = 0,
    failed: int = 1,
    degenerate: int = 1,
    repeated: int = 2,
    images: bool = True,
    viewer: tuple[int, int] | None = (48, 6),
    submission: bool = True,
) -> tuple[Path, Path]:
    """Write ``root/results`` and ``root/figures``: the first ``failed`` models failed, the next ``degenerate``
    did not learn, and the last ``repeated`` models of each experiment have two repeats (seeds 1 and 2);
    ``viewer`` (in-plane size, slices): the viewer's volumes, or None for none; ``submission``: one submission
    (``SUBMISSION``) ranked with the first experiment's models."""
    rng = np.random.default_rng(seed)
    results, figures = root / "results", root / "figures"
    for folder in (figures / "masks", figures / "filters"):
        folder.mkdir(parents=True, exist_ok=True)
    cells = grid_cells(list(experiments), list(architectures), list(encoders), list(weights))
    repeats = (
        [c.id for e in experiments for c in [c for c in cells if c.experiment == e][-repeated:]] if repeated else []
    )
    raw = profiles.compose("paper", Path(__file__).resolve().parents[1] / "conf")
    raw["grid"] = {"experiments": list(experiments), "architectures": list(architectures),
                   "encoders": list(encoders), "weights": list(weights)}  # fmt: skip
    raw["repeats"] = {"models": repeats, "seeds": [1, 2] if repeats else []}
    raw["evaluate"]["bootstrap_samples"] = 200
    params = parse_params(raw)
    folders = (root / "fixture-models", root / "fixture-evaluation")
    strip_inputs = rng.normal(-0.3, 0.5, (3, 32, 32)).astype(np.float32)
    strip_truth = rng.random((3, 32, 32)) > 0.7
    drawn_filters = set(filter_cells(cells))
    for index, run in enumerate(params.runs()):
        position = index if run.seed is None else -1
        status = (
            "failed" if 0 <= position < failed else "degenerate" if failed <= position < failed + degenerate else "ok"
        )
        _write_run(folders, run, rng, epochs, index, status)
        if images and run.seed is None and status != "failed":
            predicted = strip_truth ^ (rng.random(strip_truth.shape) > 0.9)
            mask_strip(strip_inputs, strip_truth, predicted, normalised_window(PREPROCESS)).save(
                figures / "masks" / f"{run.id}.png"
            )
            if run.cell in drawn_filters:
                import torch

                weight = torch.randn(64, 1, 7, 7, generator=torch.Generator().manual_seed(index)) * 0.2
                filter_grid(weight).save(figures / "filters" / f"{run.id}.png")
    results.mkdir(parents=True, exist_ok=True)
    speed = root / "fixture-speed.json"
    networks = {f"{a}-{e}": {"infer_images_per_s": round(float(rng.uniform(60, 1500)), 2),
                             "train_images_per_s": round(float(rng.uniform(20, 400)), 2)}
                for a in architectures for e in encoders}  # fmt: skip
    speed.write_text(json.dumps({"device": "fixture: no device", "method": "fixture", "networks": networks}))
    outside = _write_submission(root, experiments[0], rng) if submission else (None, None)
    aggregate(params, *folders, results, Path(__file__).resolve().parents[1] / "reference", speed, *outside)
    if viewer:
        board = pd.read_csv(results / "leaderboard.csv")
        drawn = set(board.loc[(board["status"] != "failed") & (board["source"] == "grid"), "id"])
        write_viewer_fixture(figures, [run for run in params.runs() if run.id in drawn], rng, *viewer)
    (figures / "intensity.json").write_text(json.dumps(intensity_histograms(_FakeTest(rng), PREPROCESS)) + "\n")
    slices = {e: [{"volume": f"{v}.nii.gz", "slice": 10 * v} for v in (1, 2, 3)] for e in experiments}
    (figures / "slices.json").write_text(json.dumps(slices, indent=2) + "\n")
    return results, figures
