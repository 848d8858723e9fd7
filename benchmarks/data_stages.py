"""Time the data stages (phantom generation, validation, preprocessing) for a profile, outside DVC.

    python -m benchmarks.data_stages demo
    python -m benchmarks.data_stages phantom-full

Runs the stages exactly as dvc.yaml does (``python -m pipeline.<stage>``) into a temporary folder and prints
one line per stage and the sizes written.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.core import profiles

ROOT = Path(__file__).resolve().parents[1]


def _size_mb(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", choices=profiles.available(ROOT / "conf"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        params = work / "params.yaml"
        profiles.write(args.profile, params, ROOT / "conf")
        stages = {
            "data": ["--out", str(work / "raw")],
            "preprocess": ["--raw", str(work / "raw"), "--out", str(work / "prepared")],
        }
        total = 0.0
        for stage, extra in stages.items():
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", f"pipeline.{stage}", "--params", str(params), *extra],
                cwd=ROOT,
                check=True,
                stderr=subprocess.DEVNULL,
            )
            elapsed = time.perf_counter() - started
            total += elapsed
            print(f"{args.profile}: {stage} {elapsed:.1f} s")
        print(
            f"{args.profile}: data stages {total:.1f} s; data/raw {_size_mb(work / 'raw'):.0f} MB, "
            f"data/prepared {_size_mb(work / 'prepared'):.0f} MB"
        )


if __name__ == "__main__":
    main()
