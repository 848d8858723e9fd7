"""Stages as users run them: one clear line on bad input, non-zero exit, earlier outputs untouched."""

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core import profiles
from pipeline.core.errors import PipelineError
from pipeline.core.outputs import replace_directory
from pipeline.data import rawdata
from pipeline.data.prepared import load_meta
from tests.conftest import ROOT, error_line, leftovers, run_here


@pytest.fixture
def tiny_params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(profiles.compose("tiny", ROOT / "conf")))
    return path


def test_replace_directory_keeps_the_old_one_on_failure(tmp_path):
    target = tmp_path / "out"
    with replace_directory(target) as staging:
        (staging / "good.txt").write_text("good")
    with pytest.raises(RuntimeError), replace_directory(target) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("killed half-way")
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != ".out.lock") == ["out"]
    assert [path.name for path in target.iterdir()] == ["good.txt"]


def test_replace_directory_clears_leftovers_of_a_killed_run(tmp_path):
    (tmp_path / ".out.tmp-999").mkdir()
    with replace_directory(tmp_path / "out") as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != ".out.lock") == ["out"]


def test_a_kill_between_the_two_renames_loses_nothing(tmp_path, monkeypatch):
    """The old output is renamed away, then the new one in: a kill in between leaves the old one under its
    backup name, and the next run, even one that fails, puts it back first."""
    from pathlib import Path

    target = tmp_path / "public"
    with replace_directory(target) as staging:
        (staging / "index.html").write_text("the last good site")
    real_rename = Path.rename

    def killed_before_the_new_output_is_in(self, destination):
        if self.name.startswith(".public.tmp-"):
            raise KeyboardInterrupt  # the process dies here
        return real_rename(self, destination)

    monkeypatch.setattr(Path, "rename", killed_before_the_new_output_is_in)
    with pytest.raises(KeyboardInterrupt), replace_directory(target) as staging:
        (staging / "index.html").write_text("the new site")
    monkeypatch.setattr(Path, "rename", real_rename)
    assert not target.exists() and len(list(tmp_path.glob(".public.old-*"))) == 1  # the window
    with pytest.raises(RuntimeError), replace_directory(target):
        raise RuntimeError("a failing rebuild")
    assert (target / "index.html").read_text() == "the last good site"
    assert sorted(path.name for path in tmp_path.iterdir() if path.name != ".public.lock") == ["public"]


@pytest.mark.slow
def test_data_then_preprocess_from_the_command_line(tmp_path, tiny_params_file):
    raw, prepared = tmp_path / "raw", tmp_path / "prepared"
    result = run_here("pipeline.data.fetch", "--params", str(tiny_params_file), "--out", str(raw))
    assert result.returncode == 0, result.stderr
    assert "data: phantom" in result.stdout and "9 test volumes" in result.stdout
    result = run_here(
        "pipeline.data.preprocess", "--params", str(tiny_params_file), "--raw", str(raw), "--out", str(prepared)
    )
    assert result.returncode == 0, result.stderr
    assert "80 train, 20 validation" in result.stdout
    meta = load_meta(prepared)
    assert (meta["profile"], meta["data_source"]) == ("tiny", "phantom")


def test_preprocess_on_malformed_data_keeps_earlier_outputs(tmp_path, raw_copy, tiny_params_file):
    prepared = tmp_path / "prepared"
    args = ("--params", str(tiny_params_file), "--raw", str(raw_copy), "--out", str(prepared))
    assert run_here("pipeline.data.preprocess", *args).returncode == 0
    before = np.load(prepared / "train" / "image.npy")
    (raw_copy / rawdata.TEST_LESION_DIR / "3.nii.gz").write_text("<html>quota exceeded</html>")
    assert error_line(run_here("pipeline.data.preprocess", *args)) == (
        f"error: {raw_copy / rawdata.TEST_LESION_DIR / '3.nii.gz'}: is an HTML page, not data "
        "(a Google Drive quota, virus-scan or sign-in page?)"
    )
    np.testing.assert_array_equal(np.load(prepared / "train" / "image.npy"), before)
    assert leftovers(tmp_path) == []


def test_preprocess_without_data_says_what_to_run(tmp_path, tiny_params_file):
    result = run_here(
        "pipeline.data.preprocess",
        "--params",
        str(tiny_params_file),
        "--raw",
        str(tmp_path / "nothing"),
        "--out",
        str(tmp_path / "prepared"),
    )
    assert error_line(result) == f"error: {tmp_path / 'nothing' / rawdata.TRAIN_IMAGE}: is missing"


def test_split_leaving_no_validation_is_refused(tmp_path, tiny_raw, tiny_params_file):
    params = yaml.safe_load(tiny_params_file.read_text())
    params["preprocess"]["train_slices"] = 100
    tiny_params_file.write_text(yaml.safe_dump(params))
    result = run_here(
        "pipeline.data.preprocess",
        "--params",
        str(tiny_params_file),
        "--raw",
        str(tiny_raw),
        "--out",
        str(tmp_path / "prepared"),
    )
    assert "preprocess.train_slices is 100" in error_line(result)
    assert not (tmp_path / "prepared").exists()


HOLD = """
import sys, time
from pathlib import Path
from pipeline.core.errors import PipelineError
from pipeline.core.outputs import replace_directory
with replace_directory(Path(sys.argv[1])) as staging:
    (staging / "half.txt").write_text("written by the first run")
    print(staging, flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(target, seconds: float) -> tuple[subprocess.Popen, Path]:
    """A first run of a stage, in a process of its own, caught in the middle of writing ``target``."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(target), str(seconds)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    return process, Path(process.stdout.readline().strip())


def test_a_second_run_waits_for_the_first_and_never_removes_its_staging(tmp_path):
    target = tmp_path / "results"
    first, staging = _holder(target, 1.5)
    try:
        assert staging.is_dir()
        busy = rf"{target}: another run \(pid {first.pid}\) is writing it"
        with pytest.raises(PipelineError, match=busy), replace_directory(target, wait_s=0.2):
            pass
        assert (staging / "half.txt").exists()  # the first run's work is untouched ...
        with replace_directory(target, wait_s=30) as second:  # ... and a patient second run waits its turn
            (second / "mine.txt").write_text("the second run")
    finally:
        first.wait(timeout=60)
        first.stdout.close()
    assert sorted(p.name for p in target.iterdir()) == ["mine.txt"] and leftovers(tmp_path) == []


@pytest.mark.parametrize("stage", ["pipeline.results.aggregate", "pipeline.site.build"])
def test_a_stage_started_while_another_writes_its_output_says_so_in_one_line(tmp_path, stage, fixture_records,
                                                                            tiny_project):  # fmt: skip
    out = tmp_path / "out"
    first, staging = _holder(out, 60)
    try:
        env = {**os.environ, "PIPELINE_LOCK_WAIT_S": "0.5"}
        command = [sys.executable, "-m", stage, "--out", str(out)]
        if stage.endswith("build"):  # the generated Markdown is the first output it writes
            results, figures = fixture_records
            command += ["--docs", str(out), "--results", str(results), "--figures", str(figures)]
        else:
            command += ["--params", str(tiny_project / "params.yaml"), "--models", str(tiny_project / "models"),
                        "--evaluation", str(tiny_project / "evaluation")]  # fmt: skip
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        line = error_line(result)
        assert line.startswith(f"error: {out}: another run (pid {first.pid}) is writing it")
        assert (staging / "half.txt").exists()
    finally:
        first.kill()
        first.wait()
        first.stdout.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EBUSY, errno.EDQUOT, errno.EFBIG])
def test_a_disk_or_permission_error_is_one_line_naming_the_output_and_cleans_up(tmp_path, code, monkeypatch):
    """A full, read-only or busy disk fails a write with an errno, not with bad input: one line naming the output
    and what the system said, exit 2, the previous output kept, no staging folder left."""
    from pipeline.core.errors import run_stage

    target = tmp_path / "results"
    target.mkdir()
    (target / "leaderboard.csv").write_text("the last good results\n")

    def main() -> None:
        with replace_directory(target) as staging:
            (staging / "leaderboard.csv").write_text("half")
            raise OSError(code, os.strerror(code))  # as a write() fails: no file name in the error

    with pytest.raises(SystemExit) as stop:
        run_stage(main)
    assert stop.value.code == 2
    assert (target / "leaderboard.csv").read_text() == "the last good results\n" and leftovers(tmp_path) == []


def test_aggregate_under_a_file_size_limit_fails_in_one_line_and_keeps_the_previous_results(tmp_path, tiny_project):
    results = tmp_path / "results"
    shutil.copytree(tiny_project / "results", results)
    before = sorted((p.name, p.stat().st_size) for p in results.rglob("*") if p.is_file())
    command = [sys.executable, "-m", "pipeline.results.aggregate", "--params", str(tiny_project / "params.yaml"),
               "--models", str(tiny_project / "models"), "--evaluation", str(tiny_project / "evaluation"),
               "--out", str(results)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=_small_files)
    line = error_line(result)
    assert line.startswith("error: ") and line.endswith("File too large (EFBIG)")
    assert sorted((p.name, p.stat().st_size) for p in results.rglob("*") if p.is_file()) == before
    assert leftovers(tmp_path) == []


def _small_files() -> None:
    """In the child: writes past 4 KB fail with EFBIG, as they do under `ulimit -f`."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
