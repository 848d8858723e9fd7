"""DICOM series in, orientation handled: the geometry we derive from the headers is dcm2niix's, a scan gives the
same mask whatever its axis order and direction, and a bad series is refused in one line."""

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from pipeline.core.cells import Cell
from pipeline.core.errors import DataError
from pipeline.data import dicom, rawdata
from pipeline.data.orientation import codes, reorientation
from pipeline.model import checkpoints
from pipeline.model import factory as models
from pipeline.predict import load_model
from tests.conftest import error_line, run_here


def _image(shape=(20, 24, 6), affine=None, seed=0) -> nib.Nifti1Image:
    """Whole HU values (a series stores integers), air to bone, on a non-square grid with distinct spacings."""
    if affine is None:
        affine = np.diag([0.8, 0.7, 2.5, 1.0])
        affine[:3, 3] = [-10, 5, 30]
    volume = np.round(np.random.default_rng(seed).normal(-500, 300, shape)).astype(np.float32)
    return nib.Nifti1Image(volume, affine)


def as_orientation(image: nib.Nifti1Image, target: str) -> nib.Nifti1Image:
    """The same scan stored in another axis order/direction (the voxels' world positions unchanged)."""
    turn = reorientation(image.affine, image.shape, target)
    data = turn.to_model(np.asarray(image.dataobj))
    affine = image.affine @ nib.orientations.inv_ornt_aff(turn.forward, image.shape)
    return nib.Nifti1Image(np.ascontiguousarray(data), affine)


def _dcm2niix(series: Path, out: Path) -> nib.Nifti1Image:
    out.mkdir()
    binary = Path(sys.executable).parent / "dcm2niix"
    result = subprocess.run([str(binary), "-z", "y", "-f", "converted", "-o", str(out), str(series)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return nib.load(next(out.glob("converted*.nii.gz")))


@pytest.mark.parametrize("stored", ["RAS", "LPS", "PIR"])
def test_a_series_reads_back_as_its_volume_and_as_dcm2niix_converts_it(tmp_path, stored):
    """A volume written as a series with pydicom reads back exactly (values and affine); dcm2niix's own conversion
    of the series is the same image in world space (it stores rows flipped: an RAS volume comes back RPS)."""
    image = as_orientation(_image(), stored)
    dicom.write_series(image, tmp_path / "series")
    ours = dicom.read_series(tmp_path / "series").image
    assert codes(ours.affine) == stored and np.allclose(ours.affine, image.affine, atol=1e-5)
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(image.dataobj))
    theirs = _dcm2niix(tmp_path / "series", tmp_path / "dcm2niix")
    if stored == "RAS":
        assert codes(theirs.affine) == "RPS"  # the observation, reproduced
    ours_c, theirs_c = nib.as_closest_canonical(ours), nib.as_closest_canonical(theirs)
    assert np.allclose(ours_c.affine, theirs_c.affine, atol=1e-4)
    assert np.array_equal(np.asarray(ours_c.dataobj), np.asarray(theirs_c.dataobj))


def _series(tmp_path: Path, name: str = "series", **kwargs) -> Path:
    dicom.write_series(_image(**kwargs), tmp_path / name)
    return tmp_path / name


def _refusal(folder: Path) -> str:
    with pytest.raises(DataError) as caught:
        dicom.read_series(folder)
    return str(caught.value)


def test_a_missing_slice_two_series_and_foreign_files_are_refused_in_one_line(tmp_path):
    folder = _series(tmp_path)
    (folder / "slice-0003.dcm").unlink()
    assert "the series is incomplete: 5.00 mm between slices" in _refusal(folder)

    mixed = _series(tmp_path, "mixed")
    other = _series(tmp_path, "other", seed=1)
    shutil.copy(other / "slice-0002.dcm", mixed / "z-other.dcm")
    assert "mixes series; give one series' folder" in _refusal(mixed)

    same_series = _series(tmp_path, "doubled")
    shutil.copy(same_series / "slice-0002.dcm", same_series / "z-copy.dcm")
    assert "lies at the same position as" in _refusal(same_series)

    stray = _series(tmp_path, "stray")
    (stray / "notes.txt").write_text("not an image")
    assert _refusal(stray).startswith(f"{stray / 'notes.txt'}: is not a DICOM file")
    (stray / "notes.txt").unlink()
    (stray / ".DS_Store").write_text("hidden files are skipped")
    (stray / "DICOMDIR").write_text("so is a media index")
    assert dicom.read_series(stray).image.shape == (20, 24, 6)

    mr = _series(tmp_path, "mr")
    first = mr / "slice-0001.dcm"
    dataset = pydicom.dcmread(first)
    dataset.Modality = "MR"
    dataset.save_as(first)
    assert "has the modality 'MR'; these models segment CT" in _refusal(mr)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no DICOM files" in _refusal(empty)


@pytest.fixture(scope="module")
def lung_model(tmp_path_factory) -> Path:
    """An untrained lung model that records the RAS orientation of its training data: not flip-invariant, so a
    scan shown to it mirrored gives another mask."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "lung-model"
    folder.mkdir()
    state = models.build_model("unet", "resnet18", "random").state_dict()
    preprocess = {"size": 32, "hu_offset": 500.0, "hu_scale": 500.0, "orientation": "RAS"}
    checkpoints.save(state, Cell("lung", "unet", "resnet18", "random"), preprocess, folder)
    return folder


def test_a_scan_stored_ras_lps_or_rps_gets_the_same_mask_in_its_own_geometry(lung_model, tiny_raw):
    scan = nib.load(tiny_raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz")
    assert codes(scan.affine) == "RAS"
    segmenter = load_model(lung_model, device="cpu")
    reference = segmenter.segment(np.asarray(scan.dataobj, dtype=np.float32))
    for stored in ("LPS", "RPS", "ASL"):
        turned = as_orientation(scan, stored)
        mask = segmenter.segment_scan(np.asarray(turned.dataobj, dtype=np.float32), turned.affine)
        back = reorientation(turned.affine, turned.shape, "RAS").to_model(mask)
        assert mask.shape == turned.shape and np.array_equal(back, reference), stored
    # The test can fail: shown the LPS arrays as stored, the model gives another mask.
    lps = as_orientation(scan, "LPS")
    as_stored = segmenter.segment(np.asarray(lps.dataobj, dtype=np.float32))
    assert not np.array_equal(reorientation(lps.affine, lps.shape, "RAS").to_model(as_stored), reference)


def test_predict_on_a_dicom_series_gives_the_niftis_mask_and_a_dicom_seg(tmp_path, lung_model, tiny_raw):
    import highdicom as hd

    scan = nib.load(tiny_raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz")
    whole = nib.Nifti1Image(np.round(np.asarray(scan.dataobj)).astype(np.float32), scan.affine)
    nib.save(whole, tmp_path / "scan.nii.gz")
    dicom.write_series(whole, tmp_path / "series")
    common = ("--model", str(lung_model), "--device", "cpu")
    result = run_here("pipeline.predict", *common, str(tmp_path / "scan.nii.gz"), str(tmp_path / "from-nifti.nii.gz"))
    assert result.returncode == 0, result.stderr
    result = run_here("pipeline.predict", *common, str(tmp_path / "series"), str(tmp_path / "from-dicom.nii.gz"),
                      "--dicom-seg", str(tmp_path / "mask.dcm"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert " ml) in " in result.stdout and "DICOM SEG" in result.stdout
    from_nifti, from_dicom = nib.load(tmp_path / "from-nifti.nii.gz"), nib.load(tmp_path / "from-dicom.nii.gz")
    assert np.allclose(from_nifti.affine, from_dicom.affine, atol=1e-5)
    assert np.array_equal(np.asarray(from_nifti.dataobj), np.asarray(from_dicom.dataobj))
    seg = hd.seg.segread(tmp_path / "mask.dcm")
    segment = seg.SegmentSequence[0]
    assert segment.SegmentLabel == "lung" and segment.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Lung"
    frames = seg.get_volume().array if hasattr(seg, "get_volume") else None
    assert frames is not None and int(frames.sum()) == int(np.asarray(from_dicom.dataobj).sum())


def test_predict_refuses_a_broken_series_and_a_seg_of_a_nifti_in_one_line(tmp_path, lung_model, tiny_raw):
    folder = _series(tmp_path)
    (folder / "slice-0004.dcm").unlink()
    common = ("--model", str(lung_model), "--device", "cpu")
    line = error_line(run_here("pipeline.predict", *common, str(folder), str(tmp_path / "mask.nii.gz")))
    assert line.startswith(f"error: {folder}: the series is incomplete")
    scan = tiny_raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz"
    line = error_line(run_here("pipeline.predict", *common, str(scan), str(tmp_path / "mask.nii.gz"),
                               "--dicom-seg", str(tmp_path / "mask.dcm")))  # fmt: skip
    assert "a DICOM SEG refers to a DICOM series" in line
    assert not list(tmp_path.glob("mask*"))
