import dataclasses

import pytest
import torch

from pipeline.core import profiles
from pipeline.core.config import parse_params
from pipeline.training.augment import augment, pad_value, random_affines
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def protocol():
    return parse_params(profiles.compose("paper", ROOT / "conf")).train.augment


def _blob_batch(count=6, size=32):
    masks = torch.zeros(count, 2, size, size)
    masks[:, 0, 4:28, 6:26] = 1  # a "lung"
    masks[:, 1, 10:18, 8:14] = 1  # a "lesion" off centre, so rotations and flips move it
    return masks


def test_masks_stay_binary_and_aligned_with_the_image(protocol):
    masks = _blob_batch()
    image = masks[:, 1:2].clone()  # an image identical to the lesion mask
    nearest = dataclasses.replace(protocol, image_interpolation="nearest")
    moved, moved_masks = augment(image, masks, nearest, 0.0, torch.Generator().manual_seed(1))
    assert set(moved_masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(moved, moved_masks[:, 1:2])  # same parameters for image and masks
    assert not torch.equal(moved_masks, masks)


def test_bilinear_image_still_lines_up_with_nearest_masks(protocol):
    masks = _blob_batch()
    moved, moved_masks = augment(masks[:, 1:2].clone(), masks, protocol, 0.0, torch.Generator().manual_seed(2))
    inside = moved[moved_masks[:, 1:2] == 1]
    assert inside.mean() > 0.8  # the image's blob is where the mask's blob went


def test_identity_settings_change_nothing(protocol):
    still = dataclasses.replace(protocol, hflip=0.0, vflip=0.0, rotation_deg=0.0, scale_min=1.0, scale_max=1.0)
    masks = _blob_batch()
    image = torch.rand(6, 1, 32, 32)
    moved, moved_masks = augment(image, masks, still, -1.0, torch.Generator().manual_seed(0))
    assert torch.allclose(moved, image, atol=1e-5)
    assert torch.equal(moved_masks, masks)


def test_flip_always_mirrors_exactly(protocol):
    flip = dataclasses.replace(protocol, hflip=1.0, vflip=0.0, rotation_deg=0.0, scale_min=1.0, scale_max=1.0)
    masks = _blob_batch(count=2)
    _, moved_masks = augment(masks[:, 1:2], masks, flip, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(moved_masks, torch.flip(masks, dims=[3]))


def test_uncovered_corners_are_filled_with_air_or_zero_hu(protocol):
    shrink = dataclasses.replace(protocol, rotation_deg=0.0, scale_min=0.5, scale_max=0.5)
    image = torch.full((1, 1, 32, 32), 0.3)
    moved, moved_masks = augment(image, torch.ones(1, 2, 32, 32), shrink, -1.0, torch.Generator().manual_seed(0))
    assert moved[0, 0, 0, 0].item() == pytest.approx(-1.0)
    assert moved[0, 0, 16, 16].item() == pytest.approx(0.3)
    assert moved_masks[0, :, 0, 0].tolist() == [0.0, 0.0]
    assert pad_value(protocol, 500.0, 500.0) == -1.0
    assert pad_value(dataclasses.replace(protocol, padding="zero_hu"), 500.0, 500.0) == 1.0


def test_parameters_follow_the_protocol_ranges(protocol):
    theta = random_affines(4000, protocol, torch.Generator().manual_seed(0), "cpu")
    scale = 1 / torch.sqrt(theta[:, 0, 0] ** 2 + theta[:, 1, 0] ** 2)
    assert scale.min() >= 0.5 - 1e-4 and scale.max() < 1.5
    determinant = theta[:, 0, 0] * theta[:, 1, 1] - theta[:, 0, 1] * theta[:, 1, 0]
    mirrored = (determinant < 0).float().mean().item()
    assert mirrored == pytest.approx(0.5, abs=0.05)  # one flip (not both) half of the time
    assert theta[:, :, 2].abs().max() == 0  # no translation
