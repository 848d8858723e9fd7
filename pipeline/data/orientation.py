"""Axis order and direction of a volume, and the exchange between a scan's own and a model's.

A CNN is not flip-invariant: a scan stored in another axis order or direction than the model's training data
(a DICOM series converted by dcm2niix comes back RPS where the study's NIfTI is RAS) shows it mirrored images.
``predict`` (and ``rescore``) therefore permute and flip the arrays to the orientation the model folder records
(``orientation`` in preprocessing.json: nibabel's axis codes of the training scan's affine) before inference, and
the mask back to the scan's own geometry: no resampling, only exact axis swaps and flips (nibabel's
``io_orientation``, the closest axis-aligned orientation). The benchmark's own evaluation reads the study's arrays
as stored and never reorients (PROTOCOL.md).
"""

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from nibabel import orientations


def codes(affine: np.ndarray) -> str:
    """The axis codes of an affine, e.g. 'RAS': where each array axis points (nibabel's convention)."""
    return "".join(nib.aff2axcodes(np.asarray(affine, dtype=float)))


def check_codes(value) -> str | None:
    """A valid orientation record (three distinct axes from L/R, A/P, S/I), or None."""
    if not (isinstance(value, str) and len(value) == 3):
        return None
    axes = [{"L": 0, "R": 0, "A": 1, "P": 1, "S": 2, "I": 2}.get(code) for code in value]
    return value if None not in axes and sorted(axes) == [0, 1, 2] else None


@dataclass(frozen=True)
class Reorientation:
    """The exact axis permutation and flips from a scan's orientation to a model's (and back)."""

    source: str
    target: str
    forward: np.ndarray  # nibabel orientation transform, scan -> model
    shape: tuple[int, ...]  # the scan's array shape

    @property
    def identity(self) -> bool:
        return self.source == self.target

    def to_model(self, array: np.ndarray) -> np.ndarray:
        return array if self.identity else orientations.apply_orientation(array, self.forward)

    def to_scan(self, array: np.ndarray) -> np.ndarray:
        if self.identity:
            return array
        backward = orientations.ornt_transform(orientations.axcodes2ornt(tuple(self.target)),
                                               orientations.axcodes2ornt(tuple(self.source)))  # fmt: skip
        back = orientations.apply_orientation(array, backward)
        assert back.shape == self.shape, (back.shape, self.shape)
        return np.ascontiguousarray(back)


def reorientation(affine: np.ndarray, shape: tuple[int, ...], target: str | None) -> Reorientation:
    """How to bring an array with ``affine`` to the ``target`` axis codes (None: keep it as stored)."""
    source = codes(affine)
    goal = target or source
    forward = orientations.ornt_transform(orientations.io_orientation(np.asarray(affine, dtype=float)),
                                          orientations.axcodes2ornt(tuple(goal)))  # fmt: skip
    return Reorientation(source, goal, forward, tuple(shape))
