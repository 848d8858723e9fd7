"""Run the grid's stale training cells outside DVC's per-stage bookkeeping, then record them in DVC.

    python -m pipeline.grid                     # every stale train@<id>, then `dvc repro` for the rest
    python -m pipeline.grid --glob 'lung-unet-*' --dry-run

Why: `dvc repro` rewrites the whole dvc.lock after every stage, which costs minutes of pure bookkeeping for
600 cells (DESIGN.md). This runner asks DVC which train cells are stale, runs exactly their stage commands,
and records finished cells with one `dvc commit` per batch. Afterwards `dvc status` is clean and `dvc repro`
has nothing left to train. A cell whose command fails is reported and left stale; it never stops the others.
A rerun after a kill skips committed cells, commits finished-but-unrecorded ones (their train.json carries
the fingerprint of the inputs they were trained on) and resumes interrupted ones from their epoch state.
"""

import argparse
import fnmatch
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.cells import parse_cell_id
from pipeline.config import PARAMS_FILE, load_params
from pipeline.dataset import PREPARED_DIR
from pipeline.errors import PipelineError, run_stage
from pipeline.models import IMAGENET_DIR
from pipeline.train import MODELS_DIR, inputs_key
from pipeline.train_inputs import describe

LOG_DIR = Path(".cache/grid-logs")
UPSTREAM = ("preprocess", "weights", "train_inputs")


def dvc_command(*args: str) -> list[str]:
    """A dvc invocation from this environment, waiting for DVC's repository lock rather than failing."""
    return [str(Path(sys.executable).parent / "dvc"), "--wait-for-lock", *args]


def _dvc(*args: str) -> None:
    result = subprocess.run(dvc_command(*args), capture_output=True, text=True)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise PipelineError(f"dvc {' '.join(args[:2])} failed: {message[-1] if message else result.returncode}")


@dataclass
class Plan:
    run: list[tuple[str, str]] = field(default_factory=list)  # (stage name, command)
    commit: list[str] = field(default_factory=list)  # finished but not recorded
    current: int = 0  # already up to date


def plan_cells(pattern: str) -> Plan:
    """Which train cells to run and which only to record, from DVC's own view of the grid."""
    from dvc.repo import Repo

    repo = Repo(".")
    stages = {
        stage.name: stage
        for stage in repo.index.stages
        if stage.name.startswith("train@") and fnmatch.fnmatch(stage.name.removeprefix("train@"), pattern)
    }
    if not stages:
        raise PipelineError(f"no train cell matches '{pattern}' in dvc.yaml")
    stale = repo.status(targets=list(stages), with_deps=False)
    description = describe(load_params(PARAMS_FILE), PREPARED_DIR, IMAGENET_DIR)
    plan = Plan(current=len(stages) - len(stale))
    for name, stage in stages.items():
        if name not in stale:
            continue
        cell = parse_cell_id(name.removeprefix("train@"))
        record = MODELS_DIR / cell.id / "train.json"
        if record.exists() and json.loads(record.read_text()).get("inputs") == inputs_key(cell, description):
            plan.commit.append(name)
        else:
            plan.run.append((name, stage.cmd))
    return plan


def run_cell(name: str, command: str) -> bool:
    """Run a stage command as DVC would (a shell in the project root); its output goes to a log file."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"{name.removeprefix('train@')}.log", "w") as log:
        return subprocess.run(command, shell=True, stdout=log, stderr=subprocess.STDOUT).returncode == 0


def commit(names: list[str]) -> None:
    """Record finished cells in dvc.lock, as `dvc commit --force` would, with one lock-file write per batch.

    `dvc commit` with targets collects the whole 600-item dvc.yaml and rewrites dvc.lock once per target
    (0.6 s each here); collecting once and dumping the batch together costs 0.05 s per cell.
    """
    if not names:
        return
    from dvc.repo import Repo, lock_repo

    repo = Repo(".", _wait_for_lock=True)  # another runner holding the lock is waited for, not an error
    with lock_repo(repo):
        stages = {stage.name: stage for stage in repo.index.stages}
        chosen = [stages[name] for name in names]
        for stage in chosen:
            stage.save()
            stage.commit()
        chosen[0].dvcfile.dump_stages(chosen, update_pipeline=False)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the grid's stale cells and record them in DVC.")
    parser.add_argument("--glob", default="*", help="only cells whose id matches, e.g. 'lesion_*-unet-*'")
    parser.add_argument("--batch", type=int, default=50, help="finished cells recorded per `dvc commit`")
    parser.add_argument("--dry-run", action="store_true", help="list what would run and exit")
    parser.add_argument("--train-only", action="store_true", help="skip the final `dvc repro` of later stages")
    args = parser.parse_args()
    started = time.perf_counter()
    if not args.dry_run:
        _dvc("repro", "--quiet", *UPSTREAM)  # the data the cells read must be current first
    plan = plan_cells(args.glob)
    print(f"grid: {len(plan.run)} to train, {len(plan.commit)} finished to record, {plan.current} up to date")
    if args.dry_run:
        for name, command in plan.run:
            print(f"  {name}: {shlex.split(command)[-1]}")
        return
    commit(plan.commit)
    failed, pending = [], []
    progress = tqdm(plan.run, desc="grid", unit="model")
    for name, command in progress:
        progress.set_postfix(failed=len(failed), running=name.removeprefix("train@"))
        if run_cell(name, command):
            pending.append(name)
        else:
            failed.append(name)
            tqdm.write(f"failed: {name} (log: {LOG_DIR / name.removeprefix('train@')}.log)")
        if len(pending) >= args.batch:
            commit(pending)
            pending = []
    commit(pending)
    if not args.train_only and not failed:
        _dvc("repro", "--quiet")
    print(
        f"grid: {len(plan.run) - len(failed)} trained, {len(failed)} failed, {len(plan.commit)} recorded, "
        f"{plan.current} were up to date, in {time.perf_counter() - started:.1f} s"
    )
    if failed:
        raise PipelineError(f"{len(failed)} cells failed: {', '.join(failed[:5])}; see {LOG_DIR}/")


if __name__ == "__main__":
    run_stage(main)
