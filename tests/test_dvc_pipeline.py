"""The data stages through DVC itself, in a fresh copy of the project, switched to the tiny profile."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import project_copy

pytestmark = pytest.mark.slow


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # Stage commands call `python`: it must be this interpreter, with the project's dependencies.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.invalid")
    env.update(GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.invalid")
    return subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_profile_switch_and_repro_of_the_data_stages(tmp_path):
    project = project_copy(tmp_path / "project")
    result = dvc(project, "exp", "run", "-S", "profile=tiny")
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load((project / "params.yaml").read_text())["profile"] == "tiny"
    meta = json.loads((project / "data" / "prepared" / "meta.json").read_text())
    assert (meta["profile"], meta["data_source"], meta["preprocess"]["size"]) == ("tiny", "phantom", 32)
    assert json.loads((project / "data" / "raw" / "provenance.json").read_text())["profile"] == "tiny"

    status = dvc(project, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == {}, status.stdout + status.stderr
    # A change to preprocessing alone makes preprocess stale, never the data stage.
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["preprocess"]["size"] = 64
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    stale = json.loads(dvc(project, "status", "--json").stdout)
    assert list(stale) == ["preprocess"]
