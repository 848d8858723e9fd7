"""One model's evaluation at the paper's geometry, split into its parts, and what it projects to for 600 models.

    python -m benchmarks.evaluate_scale                     # phantom-full sizes: 9 volumes, ~829 slices at 630 x 630
    python -m benchmarks.evaluate_scale --keep /tmp/evaluate-scale   # keep the prepared data for the next run
    python -m benchmarks.evaluate_scale --size 128 --working 64 --slices-min 8 --slices-max 10   # a quick look

Prepares the phantom at the given sizes with the real stages (``phantom.write_dataset``, ``preprocess``; not
counted), then times, on one CPU thread as each evaluation worker runs:

- inference: ``pipeline.inference.probabilities`` of an untrained unet-resnet18 (speed does not depend on the
  weights) on a sample of ``--infer-slices`` slices, scaled to all test slices;
- resampling: ``to_native`` of every volume's working-size probabilities back to its 630 x 630 grid;
- overlap metrics: confusion counts and scores per volume;
- boundary metrics: ``pipeline.surface.surface_scores`` (MONAI, NSD and HD95) per volume;

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

from pipeline import metrics, models, phantom, surface
from pipeline.config import PreprocessParams
from pipeline.dataset import load_native
from pipeline.evaluate import EVALUATION_CODE, HeldOutSet, code_fingerprint, evaluation_key, plan
from pipeline.inference import probabilities, to_native
from pipeline.preprocess import preprocess

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


def incremental_overhead(test: HeldOutSet, scratch: Path) -> float:
    """Seconds the stage spends deciding what to evaluate among 600 models (fingerprints and keys)."""
    from pipeline.config import EvaluateParams

    params = EvaluateParams(threshold=0.5, bootstrap_samples=1000, confidence=0.95, seed=0,
                            nsd_tolerance_mm_lung=1.0, nsd_tolerance_mm_lesion=3.0, workers=0)  # fmt: skip
    runs = [f"lung-unet-resnet18-random~seed{i}" for i in range(GRID_MODELS)]
    models_dir, out = scratch / "models", scratch / "evaluation"
    for index, run in enumerate(runs):
        (models_dir / run).mkdir(parents=True)
        (out / run).mkdir(parents=True)
        train = {"id": run, "status": "ok", "experiment": "lung", "data_source": "phantom", "profile": "x",
                 "checkpoint": {"sha256": f"{index:064x}", "bytes": 1}}  # fmt: skip
        (models_dir / run / "train.json").write_text(json.dumps(train))
        (out / run / "volumes.csv").write_text("volume\n")
    started = time.perf_counter()
    data, code = test.fingerprint(), code_fingerprint()

    def key(train: dict) -> str:
        return evaluation_key(train, data, code, params, "cpu")

    jobs, _ = plan(runs, models_dir, out, key)
    for job in jobs[1:]:  # as after a full evaluation: every result stored but one
        (out / job.run_id / "metrics.json").write_text(json.dumps({"key": job.key}))
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
        incremental = overhead + per_model
        print(f"  evaluation code hashed: {', '.join(EVALUATION_CODE)}")
        print(f"600 models on this machine ({cores} cores, one single-thread worker each): {full / 3600:.1f} h")
        print(f"600 models on one GPU: inference not measured here; the CPU parts alone take {cpu_parts / 3600:.1f} h "
              f"on {cores} cores (a lower bound)")  # fmt: skip
        print(f"1 of 600 changed: {overhead:.1f} s to check 600 keys + {per_model:.0f} s for the model = "
              f"{incremental:.0f} s")  # fmt: skip
        print(f"evaluate_scale: {per_model:.0f} s per model at {args.size} px; full re-evaluation of 600 models "
              f"{full / 3600:.1f} h on {cores} cores; incremental (1 of 600) {incremental:.0f} s = "
              f"{100 * incremental / full:.2f}% of the full one (target under 2%)")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
