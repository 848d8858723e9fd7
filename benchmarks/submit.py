"""Scoring a predictions-only submission at the paper's geometry: the time from a folder of masks to the report.

    python -m benchmarks.submit                          # phantom-full sizes: 9 volumes at 630 x 630, working size 512
    python -m benchmarks.submit --keep /tmp/submit-scale # keep the prepared data for the next run
    python -m benchmarks.submit --size 128 --working 64 --slices-min 8 --slices-max 10   # a quick look

Prepares the phantom with the real stages (not counted; ``benchmarks.evaluate_scale.prepare``), writes one
mask per test volume as a submitter would (the lung ground truth shifted by two voxels, so that the boundary
metrics have real work: an exact copy takes no time there), saved with each scan's header, then times
``python -m pipeline.submit NAME --experiment lung --predictions DIR --dry-run`` run in this process: matching
the files to the volumes, reading and checking every mask (shape, affine, labels), scoring (native geometry,
NSD and HD95, the working-size metrics) and the report. Target: under 60 s on the CPU. The last line is the
time.
"""

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

from benchmarks.evaluate_scale import prepare
from pipeline.core import profiles
from pipeline.data import rawdata
from pipeline.predict import save_mask

TARGET_S = 60.0


def write_predictions(raw: Path, out: Path) -> int:
    """One mask per test volume: its lungs shifted by two voxels in-plane, with the scan's header. Voxels."""
    out.mkdir(parents=True, exist_ok=True)
    voxels = 0
    for scan in rawdata.iter_test_scans(raw):
        mask = np.roll(scan.lung > 0, 2, axis=1).astype(np.uint8)
        save_mask(mask, nib.load(raw / rawdata.TEST_IMAGE_DIR / scan.name), out / scan.name)
        voxels += mask.size
    return voxels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=630, help="in-plane size of the test volumes")
    parser.add_argument("--working", type=int, default=512, help="the working size of the prepared slices")
    parser.add_argument("--slices-min", type=int, default=None, help="fewest slices per volume (phantom-full's)")
    parser.add_argument("--slices-max", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="prepare into (and reuse) this folder")
    args = parser.parse_args()
    raw_params = profiles.compose("phantom-full", Path(__file__).resolve().parents[1] / "conf")
    phantom = raw_params["data"]["phantom"]
    slices_min = args.slices_min or phantom["test_slices_min"]
    slices_max = args.slices_max or phantom["test_slices_max"]
    root = args.keep or Path(tempfile.mkdtemp(prefix="submit-scale-"))
    try:
        prepared = prepare(root, args.size, args.working, slices_min, slices_max)
        raw_params["preprocess"]["size"] = args.working
        params_file = root / "params.yaml"
        params_file.write_text(yaml.safe_dump(raw_params, sort_keys=False))
        masks = root / "predictions"
        shutil.rmtree(masks, ignore_errors=True)
        voxels = write_predictions(root / "raw", masks)
        from pipeline.core.errors import run_stage
        from pipeline.submit import main as submit

        argv = ["pipeline.submit", "bench-entry", "--experiment", "lung", "--predictions", str(masks), "--dry-run",
                "--params", str(params_file), "--prepared", str(prepared), "--results", str(root / "no-results"),
                "--submissions", str(root / "submissions")]  # fmt: skip
        sys.argv, report = argv, io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(report):
            try:
                run_stage(submit)
            except SystemExit as stop:
                if stop.code:
                    raise
        seconds = time.perf_counter() - started
        print(report.getvalue().rstrip())
        verdict = "within" if seconds < TARGET_S else "OVER"
        print(f"submit: a predictions-only submission of 9 volumes at {args.size} x {args.size} ({voxels / 1e6:.0f} M "
              f"voxels, working size {args.working}) checked and scored in {seconds:.1f} s on the CPU "
              f"({verdict} the {TARGET_S:.0f} s target)")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
