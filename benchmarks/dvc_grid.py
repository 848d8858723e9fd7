"""DVC bookkeeping for the full 600-cell grid: pure overhead, with training replaced by a trivial command.

    python -m benchmarks.dvc_grid            # the grid runner (python -m pipeline.grid) and no-op status/repro
    python -m benchmarks.dvc_grid --naive    # also a first `dvc repro` of the 600 cells (about 15 minutes)

Works on a copy of the project in a temporary folder: the paper's grid (600 cells) on tiny synthetic data,
each train@<id> command (and the ImageNet download) swapped for one that writes its output folder, so that
every second measured is DVC and runner overhead.
Targets (issue 3): no-op `dvc status` under 5 s, first-run overhead under 3 minutes.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pipeline.core import profiles
from pipeline.grid.runner import UPSTREAM
from tests.conftest import project_copy

ROOT = Path(__file__).resolve().parents[1]

STUB = 'mkdir -p models/{cell} && echo \'{{"status": "ok"}}\' > models/{cell}/train.json'


def _environment() -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def timed(project: Path, *command: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=project, env=_environment(), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def prepare(project: Path) -> None:
    params = profiles.compose("tiny", ROOT / "conf")
    params["grid"] = profiles.compose("paper", ROOT / "conf")["grid"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    pipeline = yaml.safe_load((project / "dvc.yaml").read_text())
    key = "${item.experiment}-${item.architecture}-${item.encoder}-${item.weights}"
    pipeline["stages"]["train"]["cmd"] = STUB.format(cell=key)
    # No internet here: the ImageNet weights stage becomes an empty cache too.
    pipeline["stages"]["weights"]["cmd"] = "mkdir -p weights/imagenet && echo [] > weights/imagenet/manifest.json"
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "repro", "--quiet", *UPSTREAM], cwd=project, env=_environment(), check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive", action="store_true", help="also time a first plain `dvc repro` of 600 cells")
    args = parser.parse_args()
    dvc = str(Path(sys.executable).parent / "dvc")
    with tempfile.TemporaryDirectory() as scratch:
        project = project_copy(Path(scratch) / "runner")
        prepare(project)
        print(f"600 cells: stale `dvc status` {timed(project, dvc, 'status'):.1f} s")
        runner = timed(project, sys.executable, "-m", "pipeline.grid.runner", "--train-only")
        print(f"600 cells: first run through `python -m pipeline.grid` {runner:.1f} s (commands + bookkeeping)")
        print(f"600 cells: no-op `dvc status` {timed(project, dvc, 'status'):.1f} s")
        print(f"600 cells: no-op `dvc repro train` {timed(project, dvc, 'repro', 'train'):.1f} s")
        if args.naive:
            naive = project_copy(Path(scratch) / "naive")
            prepare(naive)
            print(f"600 cells: first run through plain `dvc repro train` {timed(naive, dvc, 'repro', 'train'):.1f} s")


if __name__ == "__main__":
    main()
