"""rescore: the build's models scored on a reader's labelled scans by the benchmark's own code. On the benchmark's
own test volumes it must give back the published Dice of every model (a self-check); on changed scans, a ranking
with intervals; bad input is one line."""

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from pipeline.data import rawdata
from tests.conftest import error_line, run_here


def rescore(project: Path, images: Path, labels: Path, out: Path, *args: str):
    return run_here("pipeline.rescore", "--images", str(images), "--labels", str(labels), "--out", str(out),
                    "--params", str(project / "params.yaml"), "--results", str(project / "results"),
                    "--models-dir", str(project / "models"), "--device", "cpu", *args)  # fmt: skip


@pytest.mark.parametrize(("experiment", "labels", "extra"), [
    ("lung", rawdata.TEST_LUNG_DIR, ()),
    ("lesion_b", rawdata.TEST_LESION_DIR, ("--lungs",)),
])  # fmt: skip
def test_rescoring_the_benchmarks_own_test_volumes_gives_back_every_published_dice(
    tiny_project, tiny_raw, tmp_path, experiment, labels, extra
):
    extra = (*extra, str(tiny_raw / rawdata.TEST_LUNG_DIR)) if extra else ()
    out = tmp_path / "out"
    result = rescore(tiny_project, tiny_raw / rawdata.TEST_IMAGE_DIR, tiny_raw / labels, out,
                     "--experiment", experiment, *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr
    ours = pd.read_csv(out / "leaderboard.csv").set_index("id")
    board = pd.read_csv(tiny_project / "results" / "leaderboard.csv").set_index("id")
    trained = board[(board["experiment"] == experiment) & board["status"].isin(["ok", "degenerate"])]
    assert sorted(ours.index) == sorted(trained.index)
    for model_id, row in trained.iterrows():
        assert ours.at[model_id, "dice"] == pytest.approx(row["dice"], abs=1e-4), model_id
        volumes = pd.read_csv(tiny_project / "results" / model_id / "volumes.csv")
        mine = pd.read_csv(out / "volumes.csv", dtype={"volume": str})
        mine = mine[mine["id"] == model_id].set_index("volume")["dice"]
        for volume, dice in zip(volumes["volume"], volumes["dice"], strict=True):
            assert mine[volume.removesuffix(".nii.gz")] == pytest.approx(dice, abs=1e-6)
    assert "Kendall's tau" in (out / "report.html").read_text()
    scans = len(list((tiny_raw / rawdata.TEST_IMAGE_DIR).glob("*.nii.gz")))
    assert f"{len(trained)} {experiment} models on {scans} scans" in result.stdout


def _perturbed(tiny_raw: Path, root: Path) -> tuple[Path, Path]:
    """The test volumes with noise, cropped to another size and stored LPS (a scanner elsewhere)."""
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(3)
    for path in sorted((tiny_raw / rawdata.TEST_IMAGE_DIR).glob("*.nii.gz")):
        scan = nib.load(path)
        lung = nib.load(tiny_raw / rawdata.TEST_LUNG_DIR / path.name)
        crop = (slice(3, -3), slice(2, -4))
        image = np.asarray(scan.dataobj)[crop] + rng.normal(0, 40, np.asarray(scan.dataobj)[crop].shape)
        affine = scan.affine @ np.array([[1, 0, 0, 3], [0, 1, 0, 2], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        shape = image.shape
        lps = affine @ np.array([[-1, 0, 0, shape[0] - 1], [0, -1, 0, shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        name = f"case-{path.name.split('.')[0]}.nii.gz"
        nib.save(nib.Nifti1Image(image[::-1, ::-1].astype(np.float32), lps), images / name)
        nib.save(nib.Nifti1Image(np.asarray(lung.dataobj)[crop][::-1, ::-1].astype(np.uint8), lps), labels / name)
    return images, labels


def test_perturbed_scans_get_a_ranking_with_intervals_and_a_report(tiny_project, tiny_raw, tmp_path):
    images, labels = _perturbed(tiny_raw, tmp_path / "mine")
    out = tmp_path / "out"
    result = rescore(tiny_project, images, labels, out, "--experiment", "lung")
    assert result.returncode == 0, result.stderr
    board = pd.read_csv(out / "leaderboard.csv")
    assert board["rank"].notna().all() and board["tier"].min() == 1
    assert (board["dice_ci_low"] <= board["dice"]).all() and (board["dice"] <= board["dice_ci_high"]).all()
    assert (board["rank_low"] <= board["rank"]).all() and (board["rank"] <= board["rank_high"]).all()
    volumes = pd.read_csv(out / "volumes.csv")
    assert set(volumes["volume"]) == {p.name.removesuffix(".nii.gz") for p in images.iterdir()}
    page = (out / "report.html").read_text()
    assert "<script" not in page and board["id"].iloc[0] in page and "these checkpoints on these scans" in page


def test_bad_scans_labels_and_folders_are_refused_in_one_line(tiny_project, tiny_raw, tmp_path):
    images = Path(shutil.copytree(tiny_raw / rawdata.TEST_IMAGE_DIR, tmp_path / "images"))
    labels = Path(shutil.copytree(tiny_raw / rawdata.TEST_LESION_DIR, tmp_path / "labels"))
    out = tmp_path / "out"
    (out).mkdir()
    (out / "kept.txt").write_text("an earlier report")
    # lesion labels run to 3; a lung label file never does
    first = sorted(labels.iterdir())[0]
    data = np.asarray(nib.load(first).dataobj).copy()
    data.flat[0] = 3
    nib.save(nib.Nifti1Image(data, nib.load(first).affine), first)
    line = error_line(rescore(tiny_project, images, labels, out, "--experiment", "lung"))
    assert line.startswith(f"error: {first}: has label values {{3}} outside the allowed {{0, 1, 2}}")
    # a scan without labels
    shutil.copy(sorted(images.iterdir())[0], images / "99.nii.gz")
    line = error_line(rescore(tiny_project, images, labels, out, "--experiment", "lesion_b", "--lungs", str(labels)))
    assert line.startswith(f"error: {images / '99.nii.gz'}: has no labels")
    (images / "99.nii.gz").unlink()
    # a JPEG renamed .nii
    (images / "1.nii.gz").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    line = error_line(rescore(tiny_project, images, labels, out, "--experiment", "lung"))
    assert line.startswith(f"error: {images / '1.nii.gz'}: ")
    # a glob that matches nothing; a report folder inside the project's results
    line = error_line(rescore(tiny_project, images, labels, out, "--experiment", "lung", "--models", "nothing-*"))
    assert "matches none of the build's trained lung models" in line
    inside = tiny_project / "results" / "mine"
    line = error_line(rescore(tiny_project, images, labels, inside, "--experiment", "lung"))
    assert "give a folder of your own" in line and not inside.exists()
    assert (out / "kept.txt").read_text() == "an earlier report"


def test_dicom_series_folders_are_scored_like_their_nifti(tiny_project, tiny_raw, tmp_path):
    """Scans given as DICOM series folders (named like their labels) score exactly as the same scans in NIfTI
    (a series stores whole HU: both are written from the rounded volume)."""
    from pipeline.data import dicom

    as_nifti, as_dicom, labels = tmp_path / "nifti", tmp_path / "dicom", tmp_path / "labels"
    for folder in (as_nifti, as_dicom, labels):
        folder.mkdir()
    for name in ("1.nii.gz", "2.nii.gz", "3.nii.gz"):
        scan = nib.load(tiny_raw / rawdata.TEST_IMAGE_DIR / name)
        whole = nib.Nifti1Image(np.round(np.asarray(scan.dataobj)).astype(np.float32), scan.affine)
        nib.save(whole, as_nifti / name)
        dicom.write_series(whole, as_dicom / name.removesuffix(".nii.gz"))
        shutil.copy(tiny_raw / rawdata.TEST_LUNG_DIR / name, labels / name)
    scored = {}
    for kind, images in (("nifti", as_nifti), ("dicom", as_dicom)):
        result = rescore(tiny_project, images, labels, tmp_path / f"out-{kind}", "--experiment", "lung")
        assert result.returncode == 0, result.stderr
        scored[kind] = pd.read_csv(tmp_path / f"out-{kind}" / "volumes.csv", dtype={"volume": str})
    assert len(scored["dicom"]) == len(scored["nifti"]) > 0
    pd.testing.assert_frame_equal(scored["dicom"], scored["nifti"])
