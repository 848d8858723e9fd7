"""A folder of predicted masks, one per test volume, read and checked against the test scans.

Any tool can write one (nnU-Net, MONAI, a script): binary masks in NIfTI, in each scan's own geometry (the
same array shape as the scan, slices on the last axis as nibabel returns them, an affine equal to the scan's
within ``AFFINE_ATOL`` mm plus ``AFFINE_RTOL`` of each value), voxels 0 or 1.

Which file is which test volume:

- named as the test volumes (``1.nii.gz`` ... ``9.nii.gz``, or ``.nii``): by that name;
- nnU-Net's layout (``<case id>.nii.gz``, e.g. ``covid_001.nii.gz``): the test volume is the number that
  ends the case id (``covid_001`` -> ``1.nii.gz``), so the case ids of a dataset converted with its volume
  numbers map by themselves;
- anything else: a case map, a CSV with the columns ``case`` (a file name or case id) and ``volume`` (a test
  volume's file name or number).

Beside the masks, the files nnU-Net writes with its predictions (``dataset.json``, ``plans.json``,
``predict_from_raw_data_args.json``, ``summary.json``, probabilities in ``.npz``/``.pkl``) and hidden files
are ignored, and never opened; any other file is refused. Every problem is one DataError naming the file.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.submissions import (
    AFFINE_ATOL,
    AFFINE_RTOL,
    IGNORED_NAMES,
    IGNORED_SUFFIXES,
    NIFTI_SUFFIXES,
    case_id,
)
from pipeline.data import rawdata, transforms

_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Geometry:
    """A test scan as its masks must fit it: shape (H, W, slices) and affine."""

    shape: tuple[int, int, int]
    affine: np.ndarray


def _volume_number(volume: str) -> int:
    return int(case_id(volume))


def read_case_map(path: Path, volumes: list[str]) -> dict[str, str]:
    """case id -> test volume file name, from a CSV with the columns ``case`` and ``volume``."""
    rawdata.check_regular(path)
    by_number = {_volume_number(volume): volume for volume in volumes}
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(path, f"is not a readable CSV ({error})") from None
    if not rows or not {"case", "volume"} <= set(rows[0]):
        raise DataError(path, "needs the columns 'case' and 'volume' (a test volume's file name or number)")
    mapping: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        case, volume = case_id((row["case"] or "").strip()), (row["volume"] or "").strip()
        digits = case_id(volume)  # ASCII digits only ("²".isdigit() is True), and no 5000-digit numbers
        number = _volume_number(volume) if digits.isascii() and digits.isdigit() and len(digits) <= 6 else None
        if number not in by_number:
            raise DataError(path, f"row {line}: {volume!r} is not a test volume ({', '.join(volumes)})")
        if case in mapping:
            raise DataError(path, f"row {line}: the case {case!r} is mapped twice")
        mapping[case] = by_number[number]
    return mapping


def _listing(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, "is not a folder of predicted masks")
    masks = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") or name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
            continue
        if not name.endswith(NIFTI_SUFFIXES):
            raise DataError(path, "is not a NIfTI mask (.nii or .nii.gz), nor a file nnU-Net writes beside them")
        masks.append(path)
    if not masks:
        raise DataError(folder, "holds no NIfTI masks (.nii or .nii.gz)")
    return masks


def match_volumes(folder: Path, volumes: list[str], case_map: dict[str, str] | None = None) -> dict[str, Path]:
    """test volume file name -> its mask file; a missing, unknown or doubled volume is refused."""
    folder = Path(folder)
    masks = _listing(folder)
    by_number = {_volume_number(volume): volume for volume in volumes}
    found: dict[str, Path] = {}
    for path in masks:
        case = case_id(path.name)
        if case_map is not None:
            volume = case_map.get(case)
            if volume is None:
                raise DataError(path, "is not in the case map: which test volume is it?")
        else:
            match = _TRAILING_NUMBER.search(case)
            if match is None:
                raise DataError(path, "has no test volume number at the end of its name; rename it (1.nii.gz ...) "
                                      "or give a case map (--case-map)")  # fmt: skip
            volume = by_number.get(int(match.group(1)))
            if volume is None:
                raise DataError(path, f"is an extra volume: the test volumes are {', '.join(volumes)}")
        if volume in found:
            raise DataError(path, f"is a second mask for the test volume {volume} (the first: {found[volume].name})")
        found[volume] = path
    missing = [volume for volume in volumes if volume not in found]
    if missing:
        raise DataError(folder, f"lacks a mask for the test volume {missing[0]} ({len(found)} of {len(volumes)})")
    return found


def read_mask(path: Path, geometry: Geometry) -> np.ndarray:
    """A predicted mask as a boolean array slices first (S, H, W), checked against its scan."""
    data, affine = rawdata.read_array(path, tuple(geometry.shape))
    if tuple(data.shape) != tuple(geometry.shape):
        raise DataError(path, f"has shape {tuple(data.shape)}; its scan has {tuple(geometry.shape)} (H, W, slices)")
    if not np.allclose(affine, geometry.affine, rtol=AFFINE_RTOL, atol=AFFINE_ATOL):
        worst = float(np.abs(np.asarray(affine) - geometry.affine).max())
        raise DataError(path, f"has an affine that differs from its scan's by up to {worst:.3g} mm: written in "
                              "another geometry (resampled, reoriented?); save it with the scan's header")  # fmt: skip
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise DataError(path, "contains NaN or infinite values; a mask holds 0 and 1")
    values = np.unique(data)
    unexpected = [value for value in values.tolist() if value not in (0, 1)]
    if unexpected:
        shown = ", ".join(f"{value:g}" for value in unexpected[:5])
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise DataError(path, f"has the values {{{shown}}}{more}; a mask holds only 0 and 1 (binarise it)")
    return np.ascontiguousarray(transforms.slices_first(data.astype(bool)))
