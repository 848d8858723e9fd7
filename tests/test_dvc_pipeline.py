"""The pipeline through DVC itself, in fresh copies of the project on the tiny profile."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.grid import UPSTREAM
from tests.conftest import project_copy

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _env() -> dict:
    env = dict(os.environ)
    # Stage commands call `python`: it must be this interpreter, with the project's dependencies.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.invalid")
    env.update(GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.invalid")
    return env


def run(project: Path, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=project, env=_env(), capture_output=True, text=True, timeout=1200)


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run(project, str(BIN / "dvc"), *args)


def stale_stages(project: Path) -> list[str]:
    result = dvc(project, "status", "--json")
    assert result.returncode == 0, result.stderr
    return sorted(json.loads(result.stdout))


def _edit_params(project: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _leaderboard(project: Path) -> list[dict]:
    with open(project / "results" / "leaderboard.csv") as handle:
        return list(csv.DictReader(handle))


def test_profile_switch_and_full_repro(tmp_path):
    project = project_copy(tmp_path / "project")
    result = dvc(project, "exp", "run", "-S", "profile=tiny")
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load((project / "params.yaml").read_text())["profile"] == "tiny"
    meta = json.loads((project / "data" / "prepared" / "meta.json").read_text())
    assert (meta["profile"], meta["data_source"], meta["preprocess"]["size"]) == ("tiny", "phantom", 32)

    rows = _leaderboard(project)
    assert [row["id"] for row in rows] == [
        "lung-unet-resnet18-random", "lung-pspnet-resnet18-random",
        "lesion_b-unet-resnet18-random", "lesion_b-pspnet-resnet18-random",
    ]  # fmt: skip
    assert {(row["profile"], row["data_source"], row["status"]) for row in rows} == {("tiny", "phantom", "ok")}
    assert all(0 <= float(row["dice"]) <= 1 and float(row["params_m"]) > 0 for row in rows)
    for row in rows:
        volumes = (project / "results" / row["id"] / "volumes.csv").read_text().splitlines()
        assert volumes[0].startswith("volume,slices,dice,sensitivity,specificity,precision") and len(volumes) == 10
    metrics = dvc(project, "metrics", "show", "--json")
    assert "lesion_b" in metrics.stdout and "best_dice" in metrics.stdout
    assert stale_stages(project) == []

    # A change to evaluation never retrains a model; a change to preprocessing never regenerates the data.
    _edit_params(project, "evaluate", "threshold", 0.4)
    assert stale_stages(project) == ["evaluate"]
    _edit_params(project, "preprocess", "size", 64)
    assert stale_stages(project) == ["evaluate", "preprocess"]


def test_grid_runner_trains_stale_cells_and_records_them(tmp_path):
    project = project_copy(tmp_path / "project")
    assert run(project, sys.executable, "-m", "pipeline.profiles", "tiny").returncode == 0
    assert dvc(project, "repro", *UPSTREAM).returncode == 0
    # One cell trained outside DVC, as a killed runner leaves it: the runner records it, never retrains it.
    assert run(project, sys.executable, "-m", "pipeline.train", "lung-unet-resnet18-random").returncode == 0
    before = (project / "models" / "lung-unet-resnet18-random" / "model.pt").stat().st_mtime_ns
    dry = run(project, sys.executable, "-m", "pipeline.grid", "--dry-run")
    assert "grid: 3 to train, 1 finished to record, 0 up to date" in dry.stdout, dry.stdout + dry.stderr

    result = run(project, sys.executable, "-m", "pipeline.grid")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "grid: 3 trained, 0 failed, 1 recorded" in result.stdout
    assert (project / "models" / "lung-unet-resnet18-random" / "model.pt").stat().st_mtime_ns == before
    assert stale_stages(project) == []
    assert len(_leaderboard(project)) == 4
    again = run(project, sys.executable, "-m", "pipeline.grid", "--dry-run")
    assert "grid: 0 to train, 0 finished to record, 4 up to date" in again.stdout
