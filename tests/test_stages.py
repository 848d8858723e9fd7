"""Stages as users run them: one clear line on bad input, non-zero exit, earlier outputs untouched."""

import numpy as np
import pytest
import yaml

from pipeline import profiles, rawdata
from pipeline.dataset import load_meta
from pipeline.outputs import replace_directory
from tests.conftest import ROOT, error_line, run_module


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
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
    assert [path.name for path in target.iterdir()] == ["good.txt"]


def test_replace_directory_clears_leftovers_of_a_killed_run(tmp_path):
    (tmp_path / ".out.tmp-999").mkdir()
    with replace_directory(tmp_path / "out") as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


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
    assert sorted(path.name for path in tmp_path.iterdir()) == ["public"]


def test_data_then_preprocess_from_the_command_line(tmp_path, tiny_params_file):
    raw, prepared = tmp_path / "raw", tmp_path / "prepared"
    result = run_module("pipeline.data", "--params", str(tiny_params_file), "--out", str(raw))
    assert result.returncode == 0, result.stderr
    assert "data: phantom" in result.stdout and "9 test volumes" in result.stdout
    result = run_module(
        "pipeline.preprocess", "--params", str(tiny_params_file), "--raw", str(raw), "--out", str(prepared)
    )
    assert result.returncode == 0, result.stderr
    assert "80 train, 20 validation" in result.stdout
    meta = load_meta(prepared)
    assert (meta["profile"], meta["data_source"]) == ("tiny", "phantom")


def test_preprocess_on_malformed_data_keeps_earlier_outputs(tmp_path, raw_copy, tiny_params_file):
    prepared = tmp_path / "prepared"
    args = ("--params", str(tiny_params_file), "--raw", str(raw_copy), "--out", str(prepared))
    assert run_module("pipeline.preprocess", *args).returncode == 0
    before = np.load(prepared / "train" / "image.npy")
    (raw_copy / rawdata.TEST_LESION_DIR / "3.nii.gz").write_text("<html>quota exceeded</html>")
    assert error_line(run_module("pipeline.preprocess", *args)) == (
        f"error: {raw_copy / rawdata.TEST_LESION_DIR / '3.nii.gz'}: is an HTML page, not data "
        "(a Google Drive quota, virus-scan or sign-in page?)"
    )
    np.testing.assert_array_equal(np.load(prepared / "train" / "image.npy"), before)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_preprocess_without_data_says_what_to_run(tmp_path, tiny_params_file):
    result = run_module(
        "pipeline.preprocess",
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
    result = run_module(
        "pipeline.preprocess",
        "--params",
        str(tiny_params_file),
        "--raw",
        str(tiny_raw),
        "--out",
        str(tmp_path / "prepared"),
    )
    assert "preprocess.train_slices is 100" in error_line(result)
    assert not (tmp_path / "prepared").exists()
