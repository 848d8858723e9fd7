"""Evaluation does one model's work per changed model: each result is kept with the key of what it depends on."""

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file, save_file

from pipeline.core.config import load_params
from pipeline.model.folder import WEIGHTS, file_digests
from tests.conftest import ROOT, run_in_process, scratch_project


def _evaluate(root, params="params.yaml", models="models") -> tuple[int, int]:
    code, out, err = run_in_process("pipeline.evaluation.evaluate", "--params", str(root / params), "--prepared",
                                    str(root / "data" / "prepared"), "--models", str(root / models), "--out",
                                    str(root / "evaluation"))  # fmt: skip
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    match = re.match(r"evaluate: (\d+) evaluated, (\d+) reused", last)
    assert match, last
    return int(match.group(1)), int(match.group(2))


def _results(root) -> dict:
    runs = [path for path in (root / "evaluation").iterdir() if not path.name.startswith(".")]  # not lock files
    return {path.name: json.loads((path / "metrics.json").read_text()) for path in runs}


def test_only_what_changed_is_evaluated_and_the_results_equal_a_full_evaluation(tiny_project, tmp_path):
    project = scratch_project(tiny_project, tmp_path / "project", copied=("evaluation", "models"))
    runs = len(_results(project))
    assert _evaluate(project) == (0, runs)  # nothing changed since the session's evaluation: all reused
    # A retrained model whose weights differ (here: nudged) is evaluated again, alone.
    folder = project / "models" / "lung-unet-resnet18-random"
    weights = load_file(folder / WEIGHTS)
    name = next(key for key in weights if key.endswith("weight") and weights[key].dtype.is_floating_point)
    weights[name] = weights[name] * 1.01
    save_file(weights, str(folder / WEIGHTS), metadata={"format": "pt"})
    record = json.loads((folder / "train.json").read_text())
    record["checkpoint"] = file_digests(folder / WEIGHTS)
    (folder / "train.json").write_text(json.dumps(record))
    assert _evaluate(project) == (1, runs - 1)
    incremental = _results(project)
    for run in incremental:  # a full evaluation from scratch gives the same numbers
        (project / "evaluation" / run / "key.json").unlink()
    assert _evaluate(project) == (runs, 0)
    assert _results(project) == incremental


def test_a_change_to_the_evaluation_params_evaluates_every_model(tiny_project, tmp_path):
    project = scratch_project(tiny_project, tmp_path / "project", copied=("evaluation",))
    runs = len(_results(project))
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["evaluate"]["nsd_tolerance_mm_lung"] = 2.0
    (project / "other.yaml").write_text(yaml.safe_dump(raw))
    assert _evaluate(project, "other.yaml") == (runs, 0)
    raw["evaluate"]["workers"] = 2  # how fast, not what: no new evaluation
    (project / "other.yaml").write_text(yaml.safe_dump(raw))
    assert _evaluate(project, "other.yaml") == (0, runs)


def _hashes(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}  # fmt: skip


def test_an_edited_stored_result_is_evaluated_again_and_says_so(tiny_project, tmp_path):
    project = scratch_project(tiny_project, tmp_path / "project", copied=("evaluation",))
    run = "lung-unet-resnet18-random"
    metrics = project / "evaluation" / run / "metrics.json"
    genuine = json.loads(metrics.read_text())
    others = {name: digest for name, digest in _hashes(project / "evaluation").items() if not name.startswith(run)}
    # The poisoned result keeps its key: it claims to be what these inputs gave.
    metrics.write_text(json.dumps({**genuine, "dice": 0.9999}))
    volumes = project / "evaluation" / run / "volumes.csv"
    volumes.write_text(volumes.read_text().replace(",", ",", 1))  # untouched: the metrics file alone gives it away
    code, out, err = run_in_process("pipeline.evaluation.evaluate", "--params", str(project / "params.yaml"),
                                    "--prepared", str(project / "data" / "prepared"), "--models",
                                    str(project / "models"), "--out", str(project / "evaluation"))  # fmt: skip
    assert code == 0, err
    assert f"evaluate: {run}: its stored result was changed after it was computed; evaluating it again" in out
    others_count = len(load_params(project / "params.yaml").runs()) - 1
    assert re.search(rf"evaluate: 1 evaluated \(1 of them altered\), {others_count} reused", out), out
    assert json.loads(metrics.read_text())["dice"] == genuine["dice"]
    assert {name: d for name, d in _hashes(project / "evaluation").items() if not name.startswith(run)} == others


def test_a_swapped_checkpoint_is_refused_and_nothing_is_written(tiny_project, tmp_path):
    project = scratch_project(tiny_project, tmp_path / "project", copied=("evaluation", "models"))
    weights = project / "models" / "lung-pspnet-resnet18-random" / WEIGHTS
    content = bytearray(weights.read_bytes())
    content[-100:] = bytes(100)  # same size, other weights
    weights.write_bytes(bytes(content))
    before = _hashes(project / "evaluation")
    code, _, err = run_in_process("pipeline.evaluation.evaluate", "--params", str(project / "params.yaml"),
                                  "--prepared", str(project / "data" / "prepared"), "--models",
                                  str(project / "models"), "--out", str(project / "evaluation"))  # fmt: skip
    assert code == 2
    assert f"error: {weights}: is not the checkpoint its train.json describes (its sha256 differs)" in err
    assert _hashes(project / "evaluation") == before


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_killing_evaluate_leaves_no_worker_alive(tiny_project, tmp_path):
    """SIGKILL reaches no handler: the workers must die with their parent (the kernel's death signal), not go on
    writing results, nor wait on a pipe for ever."""
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["evaluate"]["workers"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, "-m", "pipeline.evaluation.evaluate", "--params", str(tmp_path / "params.yaml"),
               "--prepared", str(tiny_project / "data" / "prepared"), "--models", str(tiny_project / "models"),
               "--out", str(tmp_path / "evaluation")]  # fmt: skip
    stage = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []  # the pool's two workers, and the resource tracker beside them
        evaluated = tmp_path / "evaluation"
        while time.monotonic() < deadline and stage.poll() is None:  # mid-run: the first result is in
            workers = [pid for pid in _children(stage.pid) if b"multiprocessing" in _cmdline(pid)]
            if any(path.is_dir() and not path.name.startswith(".") for path in evaluated.glob("*")):
                break
            time.sleep(0.05)
        assert len([pid for pid in workers if b"spawn_main" in _cmdline(pid)]) == 2, "the workers never started"
        runs = len(load_params(tiny_project / "params.yaml").runs())
        assert len([path for path in evaluated.iterdir() if not path.name.startswith(".")]) < runs, "not mid-run"
        stage.kill()
        stage.wait()
        deadline = time.monotonic() + 10
        while [pid for pid in workers if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in workers if _alive(pid)] == [], "workers outlived their stage"
    finally:
        if stage.poll() is None:
            stage.kill()


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; it only waits for its new parent to reap it
