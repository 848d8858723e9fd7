"""The study's six data files: their layout, and the one loader that reads and validates them.

Layout (the same for the real download and the synthetic phantom, so the loader never knows which it reads):

    tr_im.nii.gz                    100 axial training slices, Hounsfield units
    tr_mask.nii.gz                  lesion labels: 0 none, 1 ground-glass, 2 consolidation, 3 pleural effusion
    tr_lungmasks_updated.nii.gz     lung labels: 0 background, 1 and 2 one per lung
    rp_im/1.nii.gz ... 9.nii.gz     nine test volumes, Hounsfield units
    rp_msk/<same names>             their lesion labels (as tr_mask)
    rp_lung_msk/<same names>        their lung labels (as tr_lungmasks_updated)
    provenance.json                 the source (download or phantom), profile and parameters

Slices are taken along the last array axis exactly as nibabel returns them, with no reorientation
(PROTOCOL.md). Every problem is raised as a DataError naming the file.
"""

import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError

from pipeline.core.errors import DataError

TRAIN_IMAGE = "tr_im.nii.gz"
TRAIN_LESION = "tr_mask.nii.gz"
TRAIN_LUNG = "tr_lungmasks_updated.nii.gz"
TEST_IMAGE_DIR = "rp_im"
TEST_LESION_DIR = "rp_msk"
TEST_LUNG_DIR = "rp_lung_msk"
PROVENANCE_FILE = "provenance.json"  # where the files came from (written by the data stage)

TRAIN_SLICES = 100
TEST_VOLUMES = 9
LESION_LABELS = (0, 1, 2, 3)
LUNG_LABELS = (0, 1, 2)
# The most voxels a volume may hold before it is read: a real CT is well under 1e9 (512 x 512 x 1000 is 2.6e8);
# a header claiming more is corrupt or not a CT, and reading it would exhaust memory.
MAX_VOXELS = 1_000_000_000

# A NIfTI volume inside a test folder: "3.nii.gz" (or uncompressed "3.nii").
_VOLUME_NAME = re.compile(r"^(\d+)\.nii(\.gz)?$")


@dataclass(frozen=True)
class Scan:
    """One scan as the study uses it: arrays of shape (H, W, slices)."""

    name: str
    image: np.ndarray  # float32, Hounsfield units
    lung: np.ndarray  # uint8 labels in LUNG_LABELS
    lesion: np.ndarray  # uint8 labels in LESION_LABELS
    affine: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # voxel size in mm per array axis (NIfTI header)

    @property
    def slices(self) -> int:
        return self.image.shape[-1]


def check_regular(path: Path) -> None:
    """Refuse what is not a regular file before opening it: a FIFO or a device would block the read forever."""
    try:
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise DataError(path, "is missing") from None
    except OSError as error:  # a symbolic-link loop, a name too long, no permission to look
        raise DataError(path, f"cannot be read ({error.strerror or error})") from None
    if stat.S_ISDIR(mode):
        raise DataError(path, "is a folder, not a NIfTI file")
    if not stat.S_ISREG(mode):
        raise DataError(path, "is not a regular file (a pipe, socket or device): refused, reading it could block")


def _head(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except PermissionError:
        raise DataError(path, "cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not a NIfTI file") from None
    except OSError as error:
        raise DataError(path, f"cannot be read ({error.strerror or error})") from None


def check_not_html(path: Path) -> None:
    """Refuse an empty file or an HTML page saved under a data file's name (a Google Drive quota page)."""
    check_regular(path)
    head = _head(path, 512)
    if not head:
        raise DataError(path, "is empty")
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<head", b"<")):
        raise DataError(path, "is an HTML page, not data (a Google Drive quota, virus-scan or sign-in page?)")


def read_array(path: Path, expected_shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI file's 3-D voxels as stored (any real dtype) and its affine, every way it can be broken refused:
    not a regular file, an HTML page, not gzip under a .gz name, truncated, too large, colour or complex
    voxels, more than 3 axes (trailing axes of length 1 are dropped, as some writers add them). With
    ``expected_shape`` a header claiming another shape is refused before a byte of data is decompressed (a gzip
    bomb of 1 MB would otherwise inflate to gigabytes first)."""
    check_not_html(path)
    if path.name.endswith(".gz") and _head(path, 2) != b"\x1f\x8b":
        raise DataError(path, "is not gzip-compressed although its name ends in .gz")
    try:
        image = nib.load(path)
        voxels = int(np.prod(image.shape, dtype=np.float64))
        if voxels > MAX_VOXELS:
            shape = " x ".join(map(str, image.shape))
            raise DataError(path, f"its header claims {shape} voxels ({voxels:.2g}), more than a CT volume holds "
                                  f"(at most {MAX_VOXELS:.0e} here): a corrupt or non-CT file?")  # fmt: skip
        if expected_shape is not None:
            claimed = tuple(int(n) for n in image.shape)
            while len(claimed) > 3 and claimed[-1] == 1:
                claimed = claimed[:-1]
            if claimed != tuple(expected_shape):
                raise DataError(path, f"has shape {claimed}; its scan has {tuple(expected_shape)} (H, W, slices)")
        data = np.asanyarray(image.dataobj)
    except (EOFError, zlib.error) as error:
        raise DataError(path, f"is truncated or its gzip stream is corrupt ({error})") from None
    except MemoryError:
        raise DataError(path, "is too large to read into memory") from None
    except (ImageFileError, OSError, ValueError) as error:
        raise DataError(path, f"is not a readable NIfTI file ({error})") from None
    if data.dtype.kind == "c":
        raise DataError(path, f"holds complex values ({data.dtype}); expected real CT values or labels")
    if data.dtype.kind not in "iuf":  # NIfTI's RGB and RGBA types come as structured voxels
        kind = "colour (RGB)" if data.dtype.names else str(data.dtype)
        raise DataError(path, f"holds {kind} voxels, not CT values or labels")
    # Some writers add trailing singleton axes (H, W, S, 1).
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(path, f"has shape {data.shape}; expected a 3-D volume (H, W, slices)")
    return data, image.affine


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A CT volume in Hounsfield units as float32, and its affine."""
    data, affine = read_array(path)
    image = data.astype(np.float32, copy=False)
    check_hounsfield(image, path)
    return image, affine


def check_hounsfield(image: np.ndarray, path: Path) -> None:
    """Refuse values that cannot be a CT in Hounsfield units (NaN, or no air and no tissue)."""
    if not np.isfinite(image).all():
        raise DataError(path, "contains NaN or infinite values")
    low, high = float(image.min()), float(image.max())
    # Air is near -1000 HU and bone well above 0: anything else is not a CT in Hounsfield units.
    if low > -500 or high < 0:
        raise DataError(path, f"values span [{low:g}, {high:g}]; expected Hounsfield units (air near -1000)")


def read_labels(path: Path, allowed: tuple[int, ...]) -> np.ndarray:
    """A label map as uint8, refusing non-integer values and labels outside ``allowed``."""
    data, _ = read_array(path)
    if data.dtype.kind == "f" and not (np.isfinite(data).all() and np.array_equal(data, np.round(data))):
        raise DataError(path, "holds non-integer label values")
    values = np.unique(data)
    unexpected = sorted(set(values.tolist()) - set(allowed))
    if unexpected:
        shown = ", ".join(f"{value:g}" for value in unexpected[:5])
        valid = ", ".join(map(str, allowed))
        raise DataError(path, f"has label values {{{shown}}} outside the allowed {{{valid}}}")
    return data.astype(np.uint8)


def voxel_size(path: Path) -> tuple[float, float, float]:
    """The voxel size in mm per array axis, as the header stores it (pixdim): nibabel reads a 0 there as 1 mm,
    which would make every distance metric quietly wrong, so the stored values themselves are checked."""
    from nibabel.openers import ImageOpener

    header = nib.load(path).header  # checked: nibabel replaces a stored 0 by 1 (with a warning) ...
    with ImageOpener(str(path)) as handle:  # ... so the stored values are read from the file as they are
        raw = type(header).from_fileobj(handle, check=False)
    stored = tuple(float(value) for value in np.asarray(raw["pixdim"])[1:4])
    if len(stored) != 3 or not all(np.isfinite(stored)) or min(stored) <= 0:
        raise DataError(path, f"its header gives the voxel size {stored} (pixdim); expected three positive millimetres")
    return tuple(float(zoom) for zoom in header.get_zooms()[:3])


def _check_same_shape(reference: np.ndarray, other: np.ndarray, path: Path, image_path: Path) -> None:
    if other.shape != reference.shape:
        raise DataError(path, f"has shape {other.shape}, but its image {image_path.name} has {reference.shape}")


def _load_scan(name: str, image_path: Path, lung_path: Path, lesion_path: Path) -> Scan:
    image, affine = read_image(image_path)
    lung = read_labels(lung_path, LUNG_LABELS)
    _check_same_shape(image, lung, lung_path, image_path)
    lesion = read_labels(lesion_path, LESION_LABELS)
    _check_same_shape(image, lesion, lesion_path, image_path)
    zooms = voxel_size(image_path)
    return Scan(name=name, image=image, lung=lung, lesion=lesion, affine=affine, spacing=zooms)


def load_train(raw_dir: Path) -> Scan:
    """The 100 training slices with their lung and lesion labels."""
    raw_dir = Path(raw_dir)
    scan = _load_scan("train", raw_dir / TRAIN_IMAGE, raw_dir / TRAIN_LUNG, raw_dir / TRAIN_LESION)
    if scan.slices != TRAIN_SLICES:
        raise DataError(raw_dir / TRAIN_IMAGE, f"has {scan.slices} slices; the study's set has {TRAIN_SLICES}")
    return scan


def is_volume_name(name: str) -> bool:
    """True for a test volume's file name: a number, then .nii.gz or .nii."""
    return _VOLUME_NAME.fullmatch(name) is not None


def _volume_order(path: Path) -> int:
    match = _VOLUME_NAME.fullmatch(path.name)
    assert match is not None
    return int(match.group(1))


def list_test_volumes(raw_dir: Path) -> list[str]:
    """The test volumes' file names, paired across the three folders and sorted by number."""
    raw_dir = Path(raw_dir)
    listings = {}
    for folder in (TEST_IMAGE_DIR, TEST_LUNG_DIR, TEST_LESION_DIR):
        directory = raw_dir / folder
        if not directory.is_dir():
            raise DataError(directory, "is missing (expected a folder of test volumes 1.nii.gz ... 9.nii.gz)")
        files = [path for path in directory.iterdir() if is_volume_name(path.name)]
        listings[folder] = [path.name for path in sorted(files, key=_volume_order)]
    names = listings[TEST_IMAGE_DIR]
    if len(names) != TEST_VOLUMES:
        raise DataError(
            raw_dir / TEST_IMAGE_DIR, f"holds {len(names)} volumes; the study's test set has {TEST_VOLUMES}"
        )
    for folder in (TEST_LUNG_DIR, TEST_LESION_DIR):
        missing = sorted(set(names) - set(listings[folder]), key=lambda name: int(name.split(".")[0]))
        if missing:
            raise DataError(raw_dir / folder, f"lacks {missing[0]}, which {TEST_IMAGE_DIR}/ has")
    return names


def iter_test_scans(raw_dir: Path) -> Iterator[Scan]:
    """The test volumes one at a time (a full-size volume is hundreds of MB), in file-name order."""
    raw_dir = Path(raw_dir)
    for name in list_test_volumes(raw_dir):
        yield _load_scan(
            name,
            raw_dir / TEST_IMAGE_DIR / name,
            raw_dir / TEST_LUNG_DIR / name,
            raw_dir / TEST_LESION_DIR / name,
        )


@dataclass(frozen=True)
class Summary:
    train_shape: tuple[int, ...]
    test_shapes: dict[str, tuple[int, ...]]

    @property
    def test_slices(self) -> int:
        return sum(shape[-1] for shape in self.test_shapes.values())


def validate(raw_dir: Path) -> Summary:
    """Read every file once and check structure, shapes and labels; raise DataError on the first problem."""
    train = load_train(raw_dir)
    shapes = {scan.name: scan.image.shape for scan in iter_test_scans(raw_dir)}
    return Summary(train_shape=train.image.shape, test_shapes=shapes)
