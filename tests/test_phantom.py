import nibabel as nib
import numpy as np
import pytest

from pipeline.data import phantom, rawdata
from tests.conftest import write_tiny_phantom


def test_layout_and_shapes_match_the_real_data(tiny_raw, tiny_params):
    settings = tiny_params.data.phantom
    summary = rawdata.validate(tiny_raw)
    assert summary.train_shape == (settings.train_size, settings.train_size, rawdata.TRAIN_SLICES)
    assert list(summary.test_shapes) == [f"{k}.nii.gz" for k in range(1, 10)]
    for shape in summary.test_shapes.values():
        # The test volumes have another in-plane size than the training slices, as in the real data.
        assert shape[:2] == (settings.test_size, settings.test_size) != summary.train_shape[:2]
        assert settings.test_slices_min <= shape[2] <= settings.test_slices_max


def test_files_are_nifti_in_hounsfield_units_with_integer_labels(tiny_raw):
    image = nib.load(tiny_raw / rawdata.TRAIN_IMAGE)
    assert image.get_data_dtype() == np.int16
    assert image.header.get_xyzt_units()[0] == "mm"
    hu = np.asanyarray(image.dataobj)
    assert hu.min() <= -950  # air
    assert hu.max() >= 500  # bone
    for name in (rawdata.TRAIN_LESION, rawdata.TRAIN_LUNG):
        assert nib.load(tiny_raw / name).get_data_dtype() == np.uint8


def test_label_conventions(tiny_raw):
    scans = [rawdata.load_train(tiny_raw), *rawdata.iter_test_scans(tiny_raw)]
    lung = np.concatenate([scan.lung.ravel() for scan in scans])
    lesion = np.concatenate([scan.lesion.ravel() for scan in scans])
    image = np.concatenate([scan.image.ravel() for scan in scans])
    assert set(np.unique(lung)) == {0, 1, 2}
    assert set(np.unique(lesion)) == {0, 1, 2, 3}
    # Ground-glass and consolidation lie inside the lungs; effusion lies in the pleural space outside them.
    assert np.all(lung[(lesion == 1) | (lesion == 2)] > 0)
    assert np.all(lung[lesion == 3] == 0)
    # Lungs are dark, consolidation and effusion are soft-tissue dense, ground-glass in between.
    aerated = image[(lung > 0) & (lesion == 0)]
    assert np.median(aerated) < -700
    assert -700 < np.median(image[lesion == 1]) < -150
    assert np.median(image[lesion == 2]) > -200
    assert -100 < np.median(image[lesion == 3]) < 100


def test_image_left_lung_is_label_1(tiny_raw):
    scan = rawdata.load_train(tiny_raw)
    columns = np.nonzero(scan.lung)[1]  # the column index of every lung pixel
    labels = scan.lung[scan.lung > 0]
    mean_column = {label: columns[labels == label].mean() for label in (1, 2)}
    assert mean_column[1] < scan.lung.shape[1] / 2 < mean_column[2]


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_other_data(tmp_path, tiny_raw, tiny_params):
    again = write_tiny_phantom(tmp_path / "again", tiny_params)
    other = write_tiny_phantom(tmp_path / "other", tiny_params, seed=tiny_params.data.phantom.seed + 1)
    for name in (rawdata.TRAIN_IMAGE, rawdata.TRAIN_LESION, f"{rawdata.TEST_IMAGE_DIR}/3.nii.gz"):
        first = np.asanyarray(nib.load(tiny_raw / name).dataobj)
        assert np.array_equal(first, np.asanyarray(nib.load(again / name).dataobj))
        assert not np.array_equal(first, np.asanyarray(nib.load(other / name).dataobj))


def test_a_volume_does_not_depend_on_the_others():
    first = phantom.test_volume(seed=7, index=4, size=64, slices_min=3, slices_max=3, noise_hu=20.0)
    phantom.test_volume(seed=7, index=3, size=64, slices_min=3, slices_max=3, noise_hu=20.0)
    second = phantom.test_volume(seed=7, index=4, size=64, slices_min=3, slices_max=3, noise_hu=20.0)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("size", [64, 160])
def test_any_size_renders_the_same_anatomy(size):
    """Geometry is resolution-independent: the lung fraction of a slice barely depends on its size."""
    fractions = []
    for pixels in (size, size * 2):
        rng = np.random.default_rng([1, 2, 3])
        patient = phantom.random_patient(rng)
        _, lung, _ = phantom.render_slice(patient, 0.6, pixels, rng, noise_hu=0.0)
        fractions.append((lung > 0).mean())
    assert fractions[0] == pytest.approx(fractions[1], rel=0.05)


def test_test_volume_runs_from_apex_to_base():
    image, lung, _ = phantom.test_volume(seed=3, index=1, size=96, slices_min=12, slices_max=12, noise_hu=0.0)
    lung_area = (lung > 0).sum(axis=(0, 1))
    # Small lungs at the apex, large in the middle: a contiguous volume, not shuffled slices.
    assert lung_area[0] < lung_area[len(lung_area) // 2]
    assert image.shape[2] == 12
