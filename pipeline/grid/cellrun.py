"""Run one training cell's stage command on whatever machine an engine chose: the serial loop or a Ray worker.

The command is exactly the one dvc.yaml gives the stage (``python -m pipeline.training.train <id>``), run in the project
root with the project's Python first on PATH. Three safeguards make a grid of these safe to kill and to run
twice:

- a per-cell lock file (``.cache/grid-locks/<id>.lock``, ``flock``): a second runner that reaches a cell
  that is training elsewhere, or was trained on the same inputs since it planned, skips it (``busy``);
- the training process dies with the process that started it (``PR_SET_PDEATHSIG``), so a killed Ray
  worker leaves no orphan still writing the cell's files while the retry resumes them;
- a command killed by a signal raises ``CellInterrupted``, which the Ray engine retries; the retry resumes
  from the cell's per-epoch state (pipeline.training.train), it does not start over.

Every attempt appends to the cell's log, ``.cache/grid-logs/<id>.log``.
"""

import fcntl
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.cells import run_id_of_stage
from pipeline.core.outputs import read_previous
from pipeline.core.paths import GRID_LOCK_DIR as LOCK_DIR
from pipeline.core.paths import GRID_LOG_DIR as LOG_DIR
from pipeline.core.paths import MODELS_DIR
from pipeline.core.processes import die_with_parent


class CellInterrupted(Exception):
    """The cell's process was killed by a signal; running it again resumes it."""


@dataclass(frozen=True)
class Outcome:
    name: str  # the DVC stage, train@<id>
    status: str  # "ok", "failed" (non-zero exit) or "busy" (another runner holds the cell)
    seconds: float
    log: str  # the cell's log file
    host: str = ""
    error: str = ""  # why it failed, when the engine knows more than the exit status


def environment(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)  # torch sizes its CPU thread pool from this
    return env


def task_label(name: str) -> str:
    """The name of a task's lock and log: the run id of a training stage, or e.g. ``evaluate-3``."""
    try:
        return run_id_of_stage(name)
    except ValueError:
        return name.replace("@", "-")


def finished(root: Path, cell_id: str, inputs_key: str) -> bool:
    """Whether the run's train.json says it was trained on exactly these inputs (by another runner)."""
    return read_previous(root / MODELS_DIR / cell_id / "train.json").get("inputs") == inputs_key


def run_cell(name: str, command: str, root: str, threads: int | None = None, inputs_key: str = "") -> Outcome:
    """Run a cell's command in ``root``; see the module docstring for what each outcome means."""
    root_path = Path(root)
    cell_id = task_label(name)
    (root_path / LOCK_DIR).mkdir(parents=True, exist_ok=True)
    (root_path / LOG_DIR).mkdir(parents=True, exist_ok=True)
    log_path = root_path / LOG_DIR / f"{cell_id}.log"
    host = os.uname().nodename
    started = time.perf_counter()
    with open(root_path / LOCK_DIR / f"{cell_id}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Outcome(name, "busy", 0.0, str(log_path), host)
        if inputs_key and finished(root_path, cell_id, inputs_key):  # trained by a runner that started earlier
            return Outcome(name, "busy", 0.0, str(log_path), host)
        with open(log_path, "a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} on {host} (pid {os.getpid()}): {command}\n")
            log.flush()
            # No shell in between: the death signal must reach the training process itself. Stage commands
            # are plain argument lists (dvc.yaml), so splitting them is exact.
            process = subprocess.run(
                shlex.split(command), cwd=root_path, env=environment(threads), stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )  # fmt: skip
    seconds = time.perf_counter() - started
    if process.returncode < 0:
        raise CellInterrupted(f"{name}: killed by signal {-process.returncode} after {seconds:.0f} s")
    return Outcome(name, "ok" if process.returncode == 0 else "failed", seconds, str(log_path), host)
