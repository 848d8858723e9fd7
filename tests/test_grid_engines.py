"""The grid runner and its engines on a grid of two tiny models: Ray on a local 2-CPU cluster trains the models
`dvc exp run` trains (conftest's ``dvc_tiny_project``), a killed Ray worker is retried, a killed runner is resumed
and what it finished recorded, not retrained, two runners at once share the cells.

One base project (the tiny profile cut to the lung experiment without repeats, the stages before training done) is
copied for each test, so each starts from the same state. The runner's final `dvc repro` goes only as far as the
evaluation (``--until evaluate``): what comes after it (figures, browser graphs, site) is DVC's work on the models
the runner recorded, run end to end by tests/test_dvc_pipeline.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.core import profiles
from pipeline.grid.runner import UPSTREAM
from tests.conftest import ROOT, dvc, project_copy, run, run_here, stale_stages, write_params

pytestmark = pytest.mark.dvc
CELLS = ("lung-unet-resnet18-random", "lung-pspnet-resnet18-random")
RAY = ("--engine", "ray", "--num-cpus", "2")
UNTIL = ("--until", "evaluate")
AFTER_EVALUATE = ["aggregate", "browser", "figures", "score", "site", "speed"]  # never run in these projects


@pytest.fixture(scope="module")
def base_project(tmp_path_factory, tiny_raw, tiny_prepared) -> Path:
    project = project_copy(tmp_path_factory.mktemp("grid") / "project")
    grid = {**profiles.compose("tiny", ROOT / "conf")["grid"], "experiments": ["lung"]}
    write_params(project / "params.yaml", grid=grid, repeats={"models": [], "seeds": []})
    # The data stages' outputs are the session's tiny phantom and its preprocessing (conftest: the same params,
    # the same code), recorded by `dvc commit`, not made again; DVC runs the rest of what the cells read.
    shutil.copytree(tiny_raw, project / "data" / "raw")
    shutil.copytree(tiny_prepared, project / "data" / "prepared")
    assert dvc(project, "commit", "--force", "data", "preprocess").returncode == 0
    upstream = dvc(project, "repro", *UPSTREAM)
    assert upstream.returncode == 0, upstream.stdout + upstream.stderr
    assert "Running stage 'weights'" in upstream.stdout and "Running stage 'preprocess'" not in upstream.stdout
    assert run(project, "git", "add", "-A").returncode == 0
    assert run(project, "git", "commit", "-qm", "tiny").returncode == 0
    return project


@pytest.fixture
def project(base_project, tmp_path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(base_project, copy, symlinks=True)
    return copy


def grid(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run(project, sys.executable, "-m", "pipeline.grid.runner", *args)


def start_grid(project: Path, *args: str, threads: int | None = None) -> subprocess.Popen:
    """The runner in its own session, so the test can kill it with everything it started."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "pipeline.grid.runner", *args]
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip


def wait_for(condition, timeout: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def trainer_pids(project: Path, cell: str) -> list[int]:
    """Processes running `python -m pipeline.training.train <cell>` in ``project`` (the other worker may be
    training a cell of the same name in its own project)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().split(b"\0")
                here = (proc / "cwd").resolve() == project.resolve()
            except OSError:
                continue
            if here and b"pipeline.training.train" in command and cell.encode() in command:
                pids.append(int(proc.name))
    return pids


def parent(pid: int) -> int:
    return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])


def set_epochs(project: Path, epochs: int) -> None:
    """Longer training at the protocol's batch size, so that a kill lands in the middle of it."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update(epochs=epochs, batch_size=2)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def histories(project: Path) -> dict[str, pd.DataFrame]:
    return {cell: pd.read_csv(project / "models" / cell / "history.csv") for cell in CELLS}


@pytest.mark.ray
def test_a_killed_ray_worker_is_retried_and_resumes(project):
    set_epochs(project, 6)
    cell = CELLS[1]  # PSPNet: short epochs (about a second each here), so that the kill lands with 5 to go
    state_dir = project / ".cache" / "train-state"
    runner = start_grid(project, *RAY, "--glob", cell, "--train-only")
    try:
        # A complete state file (``.safetensors``; ``.partial`` while it is written) marks a finished epoch.
        wait_for(lambda: any(state_dir.glob("*.safetensors")), what="the first epoch's state")
        (trainer,) = trainer_pids(project, cell)
        worker = parent(trainer)
        os.kill(worker, signal.SIGKILL)  # the Ray worker running the task; its trainer dies with it
        wait_for(lambda: not Path(f"/proc/{trainer}").exists(), timeout=30, what="the trainer to die")
        output, _ = runner.communicate(timeout=600)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.communicate()
    assert runner.returncode == 0, output
    log = (project / ".cache" / "grid-logs" / f"{cell}.log").read_text()
    assert log.count("--- ") == 2, log  # two attempts ...
    assert f"{cell}: resuming after epoch" in log  # ... the second resumed, it did not start over
    assert len(pd.read_csv(project / "models" / cell / "history.csv")) == 6
    assert f"train@{cell}" not in stale_stages(project)


def test_a_killed_runner_is_resumed_by_the_next_run(project):
    # The serial engine: what a resumed run does does not depend on the engine (the Ray runs in this module are enough).
    runner = start_grid(project, "--train-only")
    records = [project / "models" / cell / "train.json" for cell in CELLS]
    try:
        wait_for(lambda: any(record.exists() for record in records), what="a first finished cell")
    finally:
        os.killpg(runner.pid, signal.SIGKILL)  # the runner and the cell it trains, as a scheduler would
        runner.communicate()
    finished = {record.parent.name: record.stat().st_mtime_ns for record in records if record.exists()}
    assert len(finished) == 1
    result = grid(project, "--train-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(finished)} finished to record" in result.stdout  # committed, not retrained
    for cell, mtime in finished.items():
        assert (project / "models" / cell / "train.json").stat().st_mtime_ns == mtime
    assert not [stage for stage in stale_stages(project) if stage.startswith("train@")]


def test_two_runners_at_once_share_the_cells_and_keep_dvc_lock_whole(project):
    # One thread per trainer: two runners training at once on a 2-core machine, not four threads fighting.
    first = start_grid(project, *UNTIL, threads=1)
    second = start_grid(project, *UNTIL, threads=1)
    outputs = [runner.communicate(timeout=900)[0] for runner in (first, second)]
    assert [runner.returncode for runner in (first, second)] == [0, 0], outputs
    for cell in CELLS:  # every cell trained exactly once, by one runner or the other
        log = (project / ".cache" / "grid-logs" / f"{cell}.log").read_text()
        assert log.count("--- ") == 1, log
    assert sum("left to another runner" in output for output in outputs) >= 1
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert {f"train@{cell}" for cell in CELLS} <= set(lock["stages"])
    assert stale_stages(project) == AFTER_EVALUATE  # the runner that finished last evaluated both models
    assert all((project / "evaluation" / cell / "metrics.json").exists() for cell in CELLS)


@pytest.mark.ray
def test_ray_trains_the_models_dvc_trains_and_records_and_evaluates_them(project, dvc_tiny_project, monkeypatch):
    # (last in the module: in `make test` the other worker is still running `dvc_tiny_project` when this
    # module starts, and the tests above need none of it)
    # One torch thread in every trainer, on Ray (--cpus-per-model 1) as in the DVC project's `dvc exp run`
    # (conftest): the same arithmetic in both.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # (what the runner says before it starts anything: in this process, as `python -m` runs it)
    dry = run_here("pipeline.grid.runner", "--dry-run", cwd=project)
    assert "grid: 2 to train, 0 finished to record, 0 up to date" in dry.stdout, dry.stdout + dry.stderr
    assert dry.stdout.rstrip().endswith("then: dvc repro")  # by default every later stage
    wrong = run_here("pipeline.grid.runner", "--until", "evaluation", cwd=project)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stdout + wrong.stderr
    assert "no stage 'evaluation' for --until; its stages: aggregate, browser" in wrong.stderr
    both = run_here("pipeline.grid.runner", "--train-only", *UNTIL, cwd=project)
    assert both.returncode == 2 and "--until: not allowed with argument --train-only" in both.stderr, both.stderr
    # Ray, one CPU per model: both cells at once on the 2-CPU cluster.
    result = grid(project, *RAY, "--cpus-per-model", "1", *UNTIL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ray engine, 2 slots of 1 CPU(s)" in result.stdout
    assert "grid: 2 trained, 0 failed, 0 recorded" in result.stdout
    assert stale_stages(project) == AFTER_EVALUATE  # trained, recorded and evaluated: nothing else ran
    # The models were evaluated as Ray tasks; the final `dvc repro` reused those results.
    # (one task per batch of finished cells: with two slots, one or two tasks)
    logs = " ".join(log.read_text() for log in (project / ".cache" / "grid-logs").glob("evaluate-*.log"))
    counts = [(int(done), int(reused)) for done, reused in re.findall(r"evaluate: (\d+) evaluated, (\d+) reused", logs)]
    assert counts and sum(done for done, _ in counts) == 2 and sum(reused for _, reused in counts) == 0, logs
    # The same models as `dvc exp run` trained, one after the other, in the tiny project.
    for cell, expected in histories(dvc_tiny_project).items():
        got = histories(project)[cell]
        assert (got[["train_loss", "val_loss"]] - expected[["train_loss", "val_loss"]]).abs().max().max() <= 1e-4
        ours = json.loads((project / "models" / cell / "train.json").read_text())
        theirs = json.loads((dvc_tiny_project / "models" / cell / "train.json").read_text())
        assert abs(ours["best_val_loss"] - theirs["best_val_loss"]) <= 1e-4
        assert ours["best_epoch"] == theirs["best_epoch"]
