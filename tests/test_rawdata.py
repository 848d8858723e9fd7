"""The loader and its validation: every malformed case gives one DataError naming the file."""

import gzip
import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.data import rawdata


def _rewrite(path, array):
    nib.save(nib.Nifti1Image(array, np.eye(4)), path)


def _array(path):
    return np.asanyarray(nib.load(path).dataobj)


def _fails(raw_dir, path, message):
    with pytest.raises(DataError, match=re.escape(str(path)) + ": " + message) as caught:
        rawdata.validate(raw_dir)
    assert caught.value.path == path
    assert "\n" not in str(caught.value)


def test_reads_both_sets(tiny_raw):
    train = rawdata.load_train(tiny_raw)
    assert train.image.dtype == np.float32 and train.lung.dtype == np.uint8
    names = rawdata.list_test_volumes(tiny_raw)
    assert names == [f"{k}.nii.gz" for k in range(1, 10)]
    assert [scan.name for scan in rawdata.iter_test_scans(tiny_raw)] == names


def test_test_volumes_sort_by_number_not_text(raw_copy):
    for folder in (rawdata.TEST_IMAGE_DIR, rawdata.TEST_LESION_DIR, rawdata.TEST_LUNG_DIR):
        (raw_copy / folder / "9.nii.gz").rename(raw_copy / folder / "10.nii.gz")
    assert rawdata.list_test_volumes(raw_copy)[-2:] == ["8.nii.gz", "10.nii.gz"]


def test_html_page_instead_of_nifti(raw_copy):
    path = raw_copy / rawdata.TRAIN_LESION
    path.write_text("<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head></html>")
    _fails(raw_copy, path, "is an HTML page, not data")


def test_truncated_gzip(raw_copy):
    path = raw_copy / rawdata.TRAIN_IMAGE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _fails(raw_copy, path, "is truncated or its gzip stream is corrupt")


def test_not_gzip_although_named_so(raw_copy):
    path = raw_copy / rawdata.TEST_IMAGE_DIR / "2.nii.gz"
    path.write_bytes(gzip.decompress(path.read_bytes()))
    _fails(raw_copy, path, "is not gzip-compressed")


def test_garbage_gzip_is_not_nifti(raw_copy):
    path = raw_copy / rawdata.TRAIN_LUNG
    path.write_bytes(gzip.compress(b"definitely not a NIfTI header" * 20))
    _fails(raw_copy, path, "is not a readable NIfTI file")


def test_empty_file(raw_copy):
    path = raw_copy / rawdata.TRAIN_LESION
    path.write_bytes(b"")
    _fails(raw_copy, path, "is empty")


def test_wrong_lesion_labels(raw_copy):
    path = raw_copy / rawdata.TRAIN_LESION
    labels = _array(path).copy()
    labels[0, 0, 0] = 5
    _rewrite(path, labels)
    _fails(raw_copy, path, re.escape("has label values {5} outside the allowed {0, 1, 2, 3}"))


def test_lesion_labels_in_a_lung_mask(raw_copy):
    path = raw_copy / rawdata.TEST_LUNG_DIR / "4.nii.gz"
    labels = _array(path).copy()
    labels[1, 1, 0] = 3
    _rewrite(path, labels)
    _fails(raw_copy, path, re.escape("has label values {3} outside the allowed {0, 1, 2}"))


def test_non_integer_labels(raw_copy):
    path = raw_copy / rawdata.TRAIN_LUNG
    _rewrite(path, _array(path).astype(np.float32) * 0.5)
    _fails(raw_copy, path, "holds non-integer label values")


def test_float_labels_with_integer_values_are_fine(raw_copy):
    path = raw_copy / rawdata.TRAIN_LUNG
    _rewrite(path, _array(path).astype(np.float64))
    rawdata.validate(raw_copy)


def test_mask_shape_differs_from_image(raw_copy):
    path = raw_copy / rawdata.TRAIN_LUNG
    _rewrite(path, _array(path)[:-1])
    _fails(raw_copy, path, "has shape .* but its image tr_im.nii.gz has")


def test_wrong_number_of_training_slices(raw_copy):
    for name in (rawdata.TRAIN_IMAGE, rawdata.TRAIN_LUNG, rawdata.TRAIN_LESION):
        _rewrite(raw_copy / name, _array(raw_copy / name)[..., :99])
    _fails(raw_copy, raw_copy / rawdata.TRAIN_IMAGE, "has 99 slices; the study's set has 100")


def test_two_dimensional_image(raw_copy):
    path = raw_copy / rawdata.TRAIN_IMAGE
    _rewrite(path, _array(path)[..., 0])
    _fails(raw_copy, path, re.escape("has shape (64, 64); expected a 3-D volume"))


def test_trailing_singleton_axis_is_accepted(raw_copy):
    path = raw_copy / rawdata.TRAIN_IMAGE
    _rewrite(path, _array(path)[..., None])
    assert rawdata.load_train(raw_copy).image.ndim == 3


def test_image_not_in_hounsfield_units(raw_copy):
    path = raw_copy / rawdata.TRAIN_IMAGE
    _rewrite(path, ((_array(path).astype(np.float32) + 1024) / 4096).astype(np.float32))
    _fails(raw_copy, path, r"values span \[0, 0\.\d+\]; expected Hounsfield units")


def test_eight_test_volumes(raw_copy):
    for folder in (rawdata.TEST_IMAGE_DIR, rawdata.TEST_LESION_DIR, rawdata.TEST_LUNG_DIR):
        (raw_copy / folder / "9.nii.gz").unlink()
    _fails(raw_copy, raw_copy / rawdata.TEST_IMAGE_DIR, "holds 8 volumes; the study's test set has 9")


def test_unpaired_test_volume(raw_copy):
    (raw_copy / rawdata.TEST_LESION_DIR / "6.nii.gz").unlink()
    _fails(raw_copy, raw_copy / rawdata.TEST_LESION_DIR, "lacks 6.nii.gz, which rp_im/ has")


def test_missing_file_and_folder(raw_copy):
    (raw_copy / rawdata.TRAIN_LESION).unlink()
    _fails(raw_copy, raw_copy / rawdata.TRAIN_LESION, "is missing")
    shutil.copy(raw_copy / rawdata.TRAIN_LUNG, raw_copy / rawdata.TRAIN_LESION)
    shutil.rmtree(raw_copy / rawdata.TEST_LUNG_DIR)
    _fails(raw_copy, raw_copy / rawdata.TEST_LUNG_DIR, "is missing")
