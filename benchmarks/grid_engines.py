"""The Ray engine against the serial one on the tiny grid, on this machine: wall time and identical results.

    python -m benchmarks.grid_engines [--profile tiny] [--cpus 2]

Clones the committed project twice into a temporary folder, runs the data stages once, then trains the
profile's grid with ``python -m pipeline.grid --train-only`` through each engine (Ray: a local cluster with
``--cpus`` CPUs, ``--cpus-per-model`` = all of them, so both engines train with the same thread count).
Prints both wall times, the Ray engine's overhead (target: under 20 s for the run) and the largest
difference of any recorded loss between the two (target: at most 1e-4).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def sh(cwd: Path, *command: str) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - started


def losses(project: Path) -> dict[str, pd.DataFrame]:
    return {p.parent.name: pd.read_csv(p) for p in sorted((project / "models").glob("*/history.csv"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grid-engines-") as folder:
        base = Path(folder) / "base"
        sh(Path(folder), "git", "clone", "-q", str(ROOT), str(base))
        sh(base, sys.executable, "-m", "pipeline.core.profiles", args.profile)
        sh(base, sys.executable, "-m", "dvc", "repro", "--quiet", "train_inputs")
        serial, ray = Path(folder) / "serial", Path(folder) / "ray"
        shutil.copytree(base, serial, symlinks=True)
        shutil.copytree(base, ray, symlinks=True)
        serial_s = sh(serial, sys.executable, "-m", "pipeline.grid.runner", "--train-only")
        ray_s = sh(ray, sys.executable, "-m", "pipeline.grid.runner", "--train-only", "--engine", "ray",
                   "--num-cpus", str(args.cpus), "--cpus-per-model", str(args.cpus))  # fmt: skip
        ours, theirs = losses(ray), losses(serial)
        difference = max(float((ours[c][["train_loss", "val_loss"]] - theirs[c][["train_loss", "val_loss"]])
                               .abs().max().max()) for c in theirs)  # fmt: skip
        same_epochs = all(
            json.loads((ray / "models" / c / "train.json").read_text())["best_epoch"]
            == json.loads((serial / "models" / c / "train.json").read_text())["best_epoch"]
            for c in theirs
        )
        print(f"{len(theirs)} models ({args.profile}): serial {serial_s:.1f} s, ray {ray_s:.1f} s, "
              f"ray overhead {ray_s - serial_s:+.1f} s; largest loss difference {difference:.2e}, "
              f"same kept epochs: {same_epochs}")  # fmt: skip


if __name__ == "__main__":
    main()
