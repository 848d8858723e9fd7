"""NSD and HD95 on hand-made volumes with known answers, anisotropic spacing, and the empty-mask rules."""

import math

import numpy as np
import pytest

from pipeline.evaluation import surface

SPACING = (2.0, 1.0, 1.0)  # mm per axis: slices twice as far apart as pixels, as in CT


def _sphere(radius_mm: float, shape=(40, 64, 64), centre=(20, 32, 32)) -> np.ndarray:
    """A ball of ``radius_mm`` in millimetres, drawn on the anisotropic grid."""
    axes = np.ogrid[tuple(slice(0, n) for n in shape)]
    distance = sum(((axis - c) * step) ** 2 for axis, c, step in zip(axes, centre, SPACING, strict=True))
    return distance <= radius_mm**2


def test_concentric_spheres_are_their_radius_difference_apart():
    outer, inner = _sphere(20.0), _sphere(15.0)
    nsd_tight, hd95 = surface.surface_scores(inner, outer, SPACING, tolerance_mm=1.0)
    nsd_loose, _ = surface.surface_scores(inner, outer, SPACING, tolerance_mm=7.0)
    assert hd95 == pytest.approx(5.0, abs=1.0)  # every boundary point is 5 mm from the other, up to a voxel
    assert nsd_tight == pytest.approx(0.0, abs=0.02) and nsd_loose == pytest.approx(1.0)
    # Ignoring the 2 mm slice spacing would bring the poles within 2.5 "mm" of each other: spacing matters.
    nsd_2mm, _ = surface.surface_scores(inner, outer, SPACING, tolerance_mm=2.0)
    nsd_2mm_isotropic, _ = surface.surface_scores(inner, outer, (1.0, 1.0, 1.0), tolerance_mm=2.0)
    assert nsd_2mm == 0.0 and nsd_2mm_isotropic > 0.1


def test_a_perfect_prediction_scores_one_and_zero():
    sphere = _sphere(12.0)
    assert surface.surface_scores(sphere, sphere, SPACING, tolerance_mm=1.0) == (1.0, 0.0)


def test_the_empty_mask_rules():
    empty, sphere = np.zeros((40, 64, 64), dtype=bool), _sphere(10.0)
    diagonal = math.sqrt((40 * 2.0) ** 2 + 64.0**2 + 64.0**2)
    assert surface.diagonal_mm(empty.shape, SPACING) == pytest.approx(diagonal)
    assert surface.surface_scores(empty, empty, SPACING, 1.0) == (1.0, 0.0)  # nothing to find, nothing found
    assert surface.surface_scores(empty, sphere, SPACING, 1.0) == (0.0, pytest.approx(diagonal))  # all missed
    assert surface.surface_scores(sphere, empty, SPACING, 1.0) == (0.0, pytest.approx(diagonal))  # all false


def test_the_library_and_its_settings_are_named():
    assert surface.library_version().startswith("monai 1.6")
    assert "use_subvoxels=True" in surface.IMPLEMENTATION and "percentile=95" in surface.IMPLEMENTATION
