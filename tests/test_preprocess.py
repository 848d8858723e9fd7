import csv
import json

import numpy as np
import pytest

from pipeline.data import rawdata, transforms
from pipeline.data.prepared import experiment_arrays, load_meta, load_native, load_split


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return tiny_prepared


def test_normalisation_is_the_protocols():
    hu = np.array([-1000.0, -500.0, 0.0, 500.0])
    assert transforms.normalise(hu, 500.0, 500.0).tolist() == [-1.0, 0.0, 1.0, 2.0]


def test_split_sizes_and_shapes(prepared, tiny_params):
    size = tiny_params.preprocess.size
    train, val, test = (load_split(name, prepared) for name in ("train", "val", "test"))
    assert (len(train), len(val)) == (80, 20)
    assert train.image.shape == (80, size, size) and train.image.dtype == np.float32
    volumes = load_meta(prepared)["volumes"]
    assert len(volumes) == rawdata.TEST_VOLUMES
    assert len(test) == sum(volume["shape"][2] for volume in volumes)
    with open(prepared / "test" / "slices.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(test)
    assert rows[0] == {"volume": "1.nii.gz", "slice": "0"}


def test_split_is_by_index(prepared, tiny_raw, tiny_params):
    """Slices 0-79 train and 80-99 validation, in file order (PROTOCOL.md)."""
    scan = rawdata.load_train(tiny_raw)
    val = load_split("val", prepared)
    size = tiny_params.preprocess.size
    expected = transforms.resize_images(
        transforms.normalise(transforms.slices_first(scan.image[..., 80:81]), 500.0, 500.0), size, size
    )
    np.testing.assert_allclose(val.image[0], expected[0], atol=1e-6)


def test_masks_are_binary_and_images_normalised(prepared):
    for name in ("train", "val", "test"):
        split = load_split(name, prepared)
        assert set(np.unique(split.lung)) == {0, 1}
        assert set(np.unique(split.lesion)) <= {0, 1}
        assert split.image.min() >= (-1024 + 500) / 500 - 1e-6
        # Air outside the body, after normalisation, is about -1.
        assert np.median(split.image[:, 0, :]) == pytest.approx(-1.0, abs=0.1)


def test_lesion_b_input_is_zero_outside_the_lungs(prepared):
    split = load_split("train", prepared)
    inputs, targets = experiment_arrays(split, "lesion_b")
    assert np.all(inputs[split.lung == 0] == 0)
    np.testing.assert_array_equal(inputs[split.lung == 1], split.image[split.lung == 1])
    np.testing.assert_array_equal(targets, split.lesion)
    image, lung = experiment_arrays(split, "lung")
    np.testing.assert_array_equal(image, split.image)
    np.testing.assert_array_equal(lung, split.lung)
    with pytest.raises(ValueError, match="valid: lung, lesion_a, lesion_b"):
        experiment_arrays(split, "lesion_c")


def test_native_geometry_is_kept(prepared, tiny_raw):
    scan = next(rawdata.iter_test_scans(tiny_raw))
    native = load_native("1", prepared)
    assert native.image.shape == transforms.slices_first(scan.image).shape
    assert native.image.dtype == np.int16
    np.testing.assert_array_equal(native.image, transforms.slices_first(scan.image))
    np.testing.assert_array_equal(native.lesion, transforms.binarise(transforms.slices_first(scan.lesion)))


def test_resized_masks_stay_binary_and_keep_their_area():
    rng = np.random.default_rng(0)
    mask = np.zeros((1, 630, 630), dtype=np.uint8)
    yy, xx = np.mgrid[:630, :630]
    mask[0][(yy - 300) ** 2 + (xx - 280) ** 2 < 120**2] = 1
    small = transforms.resize_masks(mask, 64, 64)
    assert set(np.unique(small)) == {0, 1}
    assert small.mean() == pytest.approx(mask.mean(), rel=0.05)
    noisy = transforms.resize_images(rng.normal(size=(2, 630, 630)).astype(np.float32), 64, 64)
    assert noisy.std() < 0.3  # antialiased: the noise is averaged, not aliased


def test_meta_records_provenance(prepared, tiny_params):
    meta = json.loads((prepared / "meta.json").read_text())
    assert meta["profile"] == "tiny"
    assert meta["data_source"] == "unknown"  # the fixture wrote no provenance.json
    assert meta["preprocess"]["size"] == tiny_params.preprocess.size
