"""One model's evaluation at the paper's geometry, split into its parts, and what it projects to for 600 models.

    python -m benchmarks.evaluate_scale                     # phantom-full sizes: 9 volumes, ~829 slices at 630 x 630
    python -m benchmarks.evaluate_scale --keep /tmp/evaluate-scale   # keep the prepared data for the next run
    python -m benchmarks.evaluate_scale --size 128 --working 64 --slices-min 8 --slices-max 10   # a quick look

Prepares the phantom at the given sizes with the real stages (``phantom.write_dataset``, ``preprocess``; not
counted), then times, on one CPU thread as each evaluation worker runs:

- inference: ``pipeline.model.inference.probabilities`` of an untrained unet-resnet18 (speed does not depend on the
  weights) on a sample of ``--infer-slices`` slices, scaled to all test slices;
- resampling: ``to_native`` of every volume's working-size probabilities back to its 630 x 630 grid;
- overlap metrics: confusion counts and scores per volume;
- boundary metrics: ``pipeline.evaluation.surface.surface_scores`` (MONAI, NSD and HD95) per volume;

the metrics on a realistic prediction (the ground truth shifted by two voxels: an untrained network's output
would be empty and take the empty-mask shortcut). Then the projections: the full re-evaluation of 600 models on
this machine's cores (one single-thread worker per core), on one GPU (its inference is not measured here: the
CPU parts alone give a lower bound), and the incremental case, one of 600 models changed (the stage checks the
keys of all 600 and evaluates one). The last line is the summary.
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.core.config import PreprocessParams
from pipeline.core.fingerprint import code_fingerprint, project_modules
from pipeline.data import phantom
from pipeline.data.prepared import load_native
from pipeline.data.preprocess import preprocess
from pipeline.evaluation import metrics, surface
from pipeline.evaluation.evaluate import STAGE, evaluation_key, plan
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model import factory as models
from pipeline.model.inference import probabilities, to_native

GRID_MODELS = 600


def prepare(root: Path, size: int, working: int, slices_min: int, slices_max: int) -> Path:
    """Phantom raw data and the prepared arrays at these sizes (reused when ``root`` already holds them)."""
    prepared = root / "prepared"
    if (prepared / "meta.json").exists():
        return prepared
    raw = root / "raw"
    started = time.perf_counter()
    phantom.write_dataset(raw, seed=2020, train_size=min(512, size), test_size=size, slices_min=slices_min,
                          slices_max=slices_max, noise_hu=20.0, workers=os.cpu_count() or 1)  # fmt: skip
    params = PreprocessParams(size=working, hu_offset=500.0, hu_scale=500.0, train_slices=80)
    preprocess(raw, prepared, params, "phantom-full")
    print(f"prepared the phantom in {time.perf_counter() - started:.0f} s (not counted)")
    return prepared


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def measure(test: HeldOutSet, infer_slices: int, tolerance_mm: float, device="cpu") -> dict[str, float]:
    """Seconds of each part of one model's evaluation on the lung experiment (inference on ``device``)."""
    torch.manual_seed(0)
    network = models.build_model("unet", "resnet18", "random").to(device).eval()
    inputs, targets = test.experiment("lung")
    sample = np.asarray(inputs[:infer_slices])
    probabilities(network, sample[:2])  # warm-up
    _, seconds = _timed(probabilities, network, sample)  # (it returns numpy arrays: the device has finished)
    times = {"inference": seconds * len(inputs) / len(sample), "resampling": 0.0, "overlap": 0.0, "boundary": 0.0}
    realistic = np.asarray(targets, dtype=np.float32)  # the truth as the model's probabilities ...
    for name, rows in test.volume_rows.items():
        native = load_native(test.volume_dirs[name], test.prepared_dir)
        truth = np.asarray(native.lung).astype(bool)
        prediction, seconds = _timed(to_native, realistic[rows], truth.shape[1], truth.shape[2], 0.5)
        times["resampling"] += seconds
        prediction = np.roll(prediction.astype(bool), 2, axis=2)  # ... shifted: a boundary error to measure
        _, seconds = _timed(lambda p, t: metrics.scores(metrics.confusion(p, t).total()), prediction, truth)
        times["overlap"] += seconds
        _, seconds = _timed(surface.surface_scores, prediction, truth, test.spacing[name], tolerance_mm)
        times["boundary"] += seconds
    return times


def grid_checkpoint_bytes() -> int:
    """The bytes of the 600 checkpoints of the paper's grid: float32 parameters of each network (the paper's
    Table II counts, reference/), three experiments and two initialisations each."""
    import csv

    with open(Path(__file__).resolve().parents[1] / "reference" / "paper_table2_performance.csv") as handle:
        millions = [float(row["params_m"]) for row in csv.DictReader(handle)]
    return int(sum(millions) * 1e6 * 4 * 3 * 2 * (100 / len(millions)))  # rows that survive stand for all 100


def hashing_seconds(total_bytes: int, scratch: Path) -> float:
    """Seconds to hash ``total_bytes`` of checkpoints, from the measured speed of sha256 on a 256 MB file."""
    from pipeline.core.fingerprint import file_sha256

    sample = scratch / "sample.safetensors"
    sample.write_bytes(os.urandom(256 * 1024**2))
    started = time.perf_counter()
    file_sha256(sample)
    rate = sample.stat().st_size / (time.perf_counter() - started)
    sample.unlink()
    return total_bytes / rate


def incremental_overhead(test: HeldOutSet, scratch: Path) -> float:
    """Seconds the stage spends deciding what to evaluate among 600 models (fingerprints, keys, the digests of
    the stored results), with checkpoints of a few bytes: hashing the real ones is ``hashing_seconds``."""
    from pipeline.core.config import EvaluateParams
    from pipeline.core.fingerprint import file_sha256
    from pipeline.evaluation.evaluate import KEY_FILE, RESULT_FILES

    params = EvaluateParams(threshold=0.5, bootstrap_samples=1000, confidence=0.95, seed=0,
                            nsd_tolerance_mm_lung=1.0, nsd_tolerance_mm_lesion=3.0, workers=0)  # fmt: skip
    runs = [f"lung-unet-resnet18-random~seed{i}" for i in range(GRID_MODELS)]
    models_dir, out = scratch / "models", scratch / "evaluation"
    for index, run in enumerate(runs):
        (models_dir / run).mkdir(parents=True)
        (out / run).mkdir(parents=True)
        weights = models_dir / run / "model.safetensors"
        weights.write_bytes(index.to_bytes(4, "little"))
        train = {"id": run, "model_id": run.split("~")[0], "status": "ok", "error": "", "experiment": "lung",
                 "architecture": "unet", "encoder": "resnet18", "encoder_weights": "random", "data_source": "phantom",
                 "profile": "x", "epochs": 1, "best_epoch": 1, "params": 1, "device": "cpu", "seed": index,
                 "best_val_loss": 0.5, "null_val_loss": 1.0,
                 "checkpoint": {"sha256": file_sha256(weights), "md5": "0" * 32, "bytes": 4}}  # fmt: skip
        (models_dir / run / "train.json").write_text(json.dumps(train))
        for name in RESULT_FILES:
            (out / run / name).write_text("{}\n")
    started = time.perf_counter()
    data, code = test.fingerprint(), code_fingerprint(STAGE)

    def key(train: dict, checkpoint: str) -> str:
        return evaluation_key(train, checkpoint, data, code, params, "cpu")

    jobs, _ = plan(runs, models_dir, out, key)
    for job in jobs[1:]:  # as after a full evaluation: every result stored but one
        stored = {"key": job.key, "files": {name: file_sha256(out / job.run_id / name) for name in RESULT_FILES}}
        (out / job.run_id / KEY_FILE).write_text(json.dumps(stored))
    jobs, reused = plan(runs, models_dir, out, key)
    assert len(jobs) == 1 and len(reused) == GRID_MODELS - 1
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=630, help="in-plane size of the test volumes (real: 630)")
    parser.add_argument("--working", type=int, default=512, help="the models' working size (the paper: 512)")
    parser.add_argument("--slices-min", type=int, default=60)
    parser.add_argument("--slices-max", type=int, default=125)
    parser.add_argument("--infer-slices", type=int, default=16, help="slices actually run through the network")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the prepared data in this folder")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as one evaluation worker
    root = args.keep or Path(tempfile.mkdtemp(prefix="evaluate-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        test = HeldOutSet.load(prepare(root, args.size, args.working, args.slices_min, args.slices_max))
        slices = sum(len(rows) for rows in test.volume_rows.values())
        times = measure(test, args.infer_slices, tolerance_mm=1.0)
        per_model = sum(times.values())
        print(f"one model, {len(test.volume_rows)} volumes, {slices} slices at {args.size} x {args.size}, working "
              f"size {args.working}, 1 CPU thread:")  # fmt: skip
        for part, seconds in times.items():
            print(f"  {part:<10} {seconds:8.1f} s  ({100 * seconds / per_model:.0f}%)")
        cores = len(os.sched_getaffinity(0))
        full = GRID_MODELS * per_model / cores
        cpu_parts = GRID_MODELS * (per_model - times["inference"]) / cores
        with tempfile.TemporaryDirectory() as scratch:
            overhead = incremental_overhead(test, Path(scratch))
            checkpoints = grid_checkpoint_bytes()
            hashing = hashing_seconds(checkpoints, Path(scratch))
        incremental = overhead + hashing + per_model
        print(f"  evaluation code hashed: the {len(project_modules(STAGE))} project modules {STAGE} imports")
        print(f"600 models on this machine ({cores} cores, one single-thread worker each): {full / 3600:.1f} h")
        print(f"600 models on one GPU: inference not measured here; the CPU parts alone take {cpu_parts / 3600:.1f} h "
              f"on {cores} cores (a lower bound)")  # fmt: skip
        print(f"1 of 600 changed: {overhead:.1f} s to check 600 keys and stored results + {hashing:.0f} s to hash "
              f"the 600 checkpoints ({checkpoints / 1e9:.0f} GB) + {per_model:.0f} s for the model = "
              f"{incremental:.0f} s")  # fmt: skip
        print(f"evaluate_scale: {per_model:.0f} s per model at {args.size} px; full re-evaluation of 600 models "
              f"{full / 3600:.1f} h on {cores} cores; incremental (1 of 600) {incremental:.0f} s = "
              f"{100 * incremental / full:.2f}% of the full one (target under 2%)")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
