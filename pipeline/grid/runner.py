"""Run the grid's stale training cells outside DVC's per-stage bookkeeping, then record them in DVC.

    python -m pipeline.grid                     # every stale train@<id> and repeat@<id>-<seed>, then `dvc repro`
    python -m pipeline.grid --glob 'lung-unet-*' --dry-run
    python -m pipeline.grid --engine ray --models-per-gpu 4            # all GPUs of this machine, or of the
    python -m pipeline.grid --engine ray --address auto                # Ray cluster this node belongs to
    python -m pipeline.grid --until evaluate    # the final `dvc repro` only up to the evaluation

Why: `dvc repro` rewrites the whole dvc.lock after every stage, which costs minutes of pure bookkeeping for
600 cells (DESIGN.md). This runner asks DVC which train cells are stale, runs exactly their stage commands,
and records finished cells with one `dvc commit` per batch. Afterwards `dvc status` is clean and `dvc repro`
has nothing left to train. A cell whose command fails is reported and left stale; it never stops the others.
A rerun after a kill skips committed cells, commits finished-but-unrecorded ones (their train.json carries
the fingerprint of the inputs they were trained on) and resumes interrupted ones from their epoch state.

Engines (pipeline.grid.engines): ``serial`` runs one cell at a time; ``ray`` runs them as Ray tasks, several
per GPU, retrying a killed one. With Ray, the models whose evaluation is not current are then evaluated by the
same engine, in chunks (``python -m pipeline.evaluation.evaluate --runs ...`` as tasks), so the final
``dvc repro`` finds every result current and reuses it (the evaluate stage keys each model's result).
Only this process writes dvc.lock, whatever the engine; two runners at once share the cells through per-cell
locks (pipeline.grid.cellrun) and take turns on DVC's repository lock.
"""

import argparse
import fnmatch
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.core.cells import run_id_of_stage, run_of_stage
from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, PipelineError, run_stage
from pipeline.core.paths import GRID_LOG_DIR, IMAGENET_DIR, PARAMS_FILE, PREPARED_DIR
from pipeline.core.processes import dvc_command, dvc_message
from pipeline.grid.cellrun import Outcome, finished
from pipeline.grid.engines import DEFAULT_MODELS_PER_GPU, SerialEngine
from pipeline.training.inputs import describe, inputs_key

UPSTREAM = ("preprocess", "weights", "train_inputs")
EVALUATE = "pipeline.evaluation.evaluate"  # the evaluate stage's module


RWLOCK_PATIENCE_S = 3600  # how long to wait for another runner's stage to release its outputs


def _dvc(*args: str) -> None:
    """Run dvc; while another runner's stage holds the outputs (DVC's rwlock, which ``--wait-for-lock`` does
    not cover), wait and try again."""
    deadline = time.monotonic() + RWLOCK_PATIENCE_S
    while True:
        result = subprocess.run(dvc_command(*args), capture_output=True, text=True)
        if result.returncode == 0:
            return
        if "rwlock" in (result.stderr + result.stdout) and time.monotonic() < deadline:
            time.sleep(2)
            continue
        raise PipelineError(f"dvc {' '.join(args[:2])} failed: {dvc_message(result)}")


def _status(targets: list[str], with_deps: bool) -> dict:
    """`dvc status` through DVC's API, waiting while another runner holds the repository or an output lock."""
    from dvc.lock import LockError
    from dvc.repo import Repo

    deadline = time.monotonic() + RWLOCK_PATIENCE_S
    while True:
        try:
            return Repo(".", _wait_for_lock=True).status(targets=targets, with_deps=with_deps)
        except LockError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def later_stages(until: str | None) -> list | None:
    """The stages the final `dvc repro` runs: ``until`` and every stage it needs, from DVC's own graph (None:
    every stage). ``until`` that names no stage of dvc.yaml is an error before anything is trained."""
    if until is None:
        return None
    from dvc.repo import Repo

    repo = Repo(".")
    names = {stage.name for stage in repo.index.stages}
    groups = {name.split("@")[0] for name in names}  # a matrix (train) is one name to dvc repro too
    if until not in names | groups:
        raise PipelineError(f"dvc.yaml has no stage '{until}' for --until; its stages: {', '.join(sorted(groups))}")
    return repo.stage.collect(until, with_deps=True)


def evaluates(stages: list | None) -> bool:
    """Whether the final `dvc repro` of ``stages`` (None: every stage) evaluates models, so that Ray may do it
    first."""
    if stages is None:
        from dvc.repo import Repo

        stages = Repo(".").index.stages
    return any(EVALUATE in stage.cmd for stage in stages)


def bring_upstream_up_to_date() -> None:
    """`dvc repro` of the stages the cells read, only when one is stale: two runners starting together would
    otherwise both take DVC's output locks for a no-op."""
    if _status(list(UPSTREAM), with_deps=True):
        _dvc("repro", *UPSTREAM)


@dataclass
class Plan:
    run: list[tuple[str, str, str]] = field(default_factory=list)  # (stage name, command, inputs key)
    commit: list[str] = field(default_factory=list)  # finished but not recorded
    current: int = 0  # already up to date


def plan_cells(pattern: str) -> Plan:
    """Which train cells to run and which only to record, from DVC's own view of the grid."""
    from dvc.repo import Repo

    repo = Repo(".")
    stages = {
        stage.name: stage
        for stage in repo.index.stages
        if stage.name.startswith(("train@", "repeat@")) and fnmatch.fnmatch(run_id_of_stage(stage.name), pattern)
    }
    if not stages:
        raise PipelineError(f"no train or repeat cell matches '{pattern}' in dvc.yaml")
    stale = _status(list(stages), with_deps=False)
    description = describe(load_params(PARAMS_FILE), PREPARED_DIR, IMAGENET_DIR)
    plan = Plan(current=len(stages) - len(stale))
    for name, stage in stages.items():
        if name not in stale:
            continue
        run = run_of_stage(name)
        key = inputs_key(run, description)
        if finished(Path("."), run.id, key):
            plan.commit.append(name)
        else:
            plan.run.append((name, stage.cmd, key))
    return plan


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


class Progress:
    """Cells done / running / failed / left, with an ETA, on one tqdm line."""

    def __init__(self, total: int, slots: int, label: str = "grid"):
        self.total, self.slots = total, slots
        self.done = self.failed = self.busy = 0
        self.bar = tqdm(total=total, desc=label, unit="task" if label != "grid" else "model", dynamic_ncols=True)
        self.update(None)

    def update(self, outcome: Outcome | None) -> None:
        if outcome is not None:
            self.done += outcome.status == "ok"
            self.failed += outcome.status == "failed"
            self.busy += outcome.status == "busy"
        left = self.total - self.done - self.failed - self.busy
        self.bar.set_postfix_str(
            f"done {self.done}, running {min(self.slots, left)}, failed {self.failed}, left {left}"
            + (f", elsewhere {self.busy}" if self.busy else ""),
            refresh=outcome is None,
        )
        if outcome is not None:
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def record_failures(failures: list[Outcome], log_dir: Path = GRID_LOG_DIR) -> Path:
    """The failed cells of this run, for people and scripts: ``.cache/grid-logs/failed.json`` (``[]`` if none)."""
    path = log_dir / "failed.json"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"stage": f.name, "error": f.error or "non-zero exit", "log": f.log, "host": f.host} for f in failures]
    path.write_text(json.dumps(rows, indent=2) + "\n")
    return path


def evaluation_tasks(runs: list[str], slots: int, chunk: int) -> list[tuple[str, str, str]]:
    """Evaluation as engine tasks: ``runs`` split into chunks (at most ``chunk`` each, at least one per slot)."""
    if not runs:
        return []
    size = max(1, min(chunk, -(-len(runs) // slots)))
    chunks = [runs[start : start + size] for start in range(0, len(runs), size)]
    return [(f"evaluate@{index}", f"python -m {EVALUATE} --runs {','.join(part)}", "")
            for index, part in enumerate(chunks, start=1)]  # fmt: skip


def pending_runs() -> list[str]:
    """The runs whose stored evaluation is not current, as the evaluate stage itself decides (in a process of
    its own: deciding needs torch, to know the device, and this driver imports none)."""
    result = subprocess.run([sys.executable, "-m", EVALUATE, "--pending"], capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise PipelineError(f"evaluate --pending failed: {lines[-1] if lines else f'exit {result.returncode}'}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def evaluate_on(engine, chunk: int) -> list[Outcome]:
    """Evaluate the stale runs through the engine; returns the failed tasks (the final `dvc repro` redoes them)."""
    tasks = evaluation_tasks(pending_runs(), engine.slots, chunk)
    failed = []
    if tasks:
        progress = Progress(len(tasks), engine.slots, "evaluate")
        try:
            for outcome in engine.run(tasks):
                progress.update(outcome)
                if outcome.status == "failed":
                    failed.append(outcome)
                    tqdm.write(f"evaluation failed: {outcome.name} (log: {outcome.log}); `dvc repro` evaluates it")
        finally:
            progress.close()
    return failed


def make_engine(args: argparse.Namespace):
    if args.engine == "serial":
        return SerialEngine(Path("."))
    from pipeline.grid.engines import RayEngine

    return RayEngine(Path("."), args.address, args.models_per_gpu, args.cpus_per_model, args.retries, args.num_cpus)


def train_cells(engine, cells: list, batch: int) -> tuple[list[Outcome], list[str]]:
    """Train ``cells`` on ``engine`` with progress, recording finished ones ``batch`` at a time (and what
    finished when interrupted); (the failures, the cells another runner is training)."""
    if engine.name == "ray":
        print(f"grid: Ray engine, {engine.describe()}")
    failures, elsewhere, pending = [], [], []
    progress = Progress(len(cells), engine.slots)
    try:
        for outcome in engine.run(cells):
            progress.update(outcome)
            if outcome.status == "ok":
                pending.append(outcome.name)
            elif outcome.status == "busy":
                elsewhere.append(outcome.name)
            else:
                failures.append(outcome)
                tqdm.write(f"failed: {outcome.name} ({outcome.error or 'non-zero exit'}; log: {outcome.log})")
            if len(pending) >= batch:
                commit(pending)
                pending = []
    finally:
        progress.close()
        commit(pending)  # what finished is recorded even when the run is interrupted
    return failures, elsewhere


def main() -> None:
    parser = ArgumentParser(description="Train the grid's stale cells and record them in DVC.")
    parser.add_argument("--glob", default="*", help="only cells whose id matches, e.g. 'lesion_*-unet-*'")
    parser.add_argument("--engine", choices=("serial", "ray"), default="serial",
                        help="serial: one cell at a time (default); ray: Ray tasks, local or on a cluster")  # fmt: skip
    parser.add_argument("--address", help="Ray cluster to join (default: $RAY_ADDRESS, else start a local one)")
    parser.add_argument("--models-per-gpu", type=int, default=DEFAULT_MODELS_PER_GPU,
                        help=f"Ray: models trained at once on each GPU (default {DEFAULT_MODELS_PER_GPU})")  # fmt: skip
    parser.add_argument("--cpus-per-model", type=int, default=1, help="Ray without GPUs: CPUs per model")
    parser.add_argument("--num-cpus", type=int, help="Ray: CPUs of the local cluster (default: all)")
    parser.add_argument("--retries", type=int, default=2, help="Ray: reruns of a killed cell (each resumes)")
    parser.add_argument("--batch", type=int, default=50, help="finished cells recorded per `dvc commit`")
    parser.add_argument("--evaluate-chunk", type=int, default=25, help="Ray: models evaluated per task")
    parser.add_argument("--dry-run", action="store_true", help="list what would run and exit")
    later_runs = parser.add_mutually_exclusive_group()
    later_runs.add_argument("--train-only", action="store_true", help="skip the final `dvc repro` of later stages")
    later_runs.add_argument("--until", metavar="STAGE",
                            help="the final `dvc repro` runs only STAGE and the stages it needs (default: every "
                                 "stage), e.g. evaluate on GPU nodes and the figures and site elsewhere")  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    later = later_stages(args.until)  # a wrong name is refused before anything runs
    final_repro = ("repro", *([args.until] if args.until else []))
    if not args.dry_run:
        bring_upstream_up_to_date()  # the data the cells read must be current first
    plan = plan_cells(args.glob)
    print(f"grid: {len(plan.run)} to train, {len(plan.commit)} finished to record, {plan.current} up to date")
    if args.dry_run:
        for name, command, _ in plan.run:
            print(f"  {name}: {command}")
        if not args.train_only:
            print(f"  then: dvc {' '.join(final_repro)}")
        return
    commit(plan.commit)
    failures: list[Outcome] = []
    elsewhere: list[str] = []
    evaluate_here = args.engine == "ray" and not args.train_only and evaluates(later)
    engine = make_engine(args) if plan.run or evaluate_here else None
    if engine is not None and plan.run:
        failures, elsewhere = train_cells(engine, plan.run, args.batch)
    if engine is not None:
        try:
            if evaluate_here and not failures:
                evaluate_on(engine, args.evaluate_chunk)
        finally:
            engine.close()
    if plan.run:
        record_failures(failures)  # this run's failures (none: an empty list), never an older run's
    # The later stages run once every cell is recorded; with two runners, the last one to finish runs them.
    others_training = bool(elsewhere) and bool(_status([name for name, _, _ in plan.run], with_deps=False))
    if others_training:
        print("grid: some cells are still training in another runner, which runs the later stages when done")
    if not args.train_only and not failures and not others_training:
        _dvc(*final_repro)
    trained = len(plan.run) - len(failures) - len(elsewhere)
    print(
        f"grid: {trained} trained, {len(failures)} failed, {len(plan.commit)} recorded, {plan.current} were up to "
        f"date{f', {len(elsewhere)} left to another runner' if elsewhere else ''}, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    if failures:
        raise PipelineError(
            f"{len(failures)} cells failed: {', '.join(f.name for f in failures[:5])}; "
            f"see {GRID_LOG_DIR / 'failed.json'}"
        )


if __name__ == "__main__":
    run_stage(main)
