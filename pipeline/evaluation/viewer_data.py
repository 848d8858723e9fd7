"""The volume viewer's data: a test volume's CT and each model's prediction on it, small enough for a web page.

- The CT, once per volume whatever the number of models: Hounsfield units clipped to ``HU_RANGE`` and stored
  as uint8 with the NIfTI scale and offset that give the HU back (the viewer's window presets are in HU),
  resized in-plane so that its larger side is at most ``viewer.size`` pixels (antialiased bilinear, as
  preprocessing resizes), with the voxel size in mm in its header.
- Per model, one uint8 label volume at the same size: 1 true positive, 2 false positive, 3 false negative (the
  colours of the mask pictures), from the model's prediction in the volume's native geometry, exactly as
  evaluation scores it, and the ground truth, each resized as masks are (coverage at least a half).

Each volume is a gzipped NIfTI carried as base64 by a small ``.js`` file (``window.viewerVolumes[key] =
"..."``): browsers refuse ``fetch()`` of local files, and a <script> works from ``file://`` as over HTTP.
"""

import gzip

import nibabel as nib
import numpy as np

from pipeline.data import transforms

HU_RANGE = (-1200.0, 600.0)  # air to dense bone: the lung and soft-tissue windows both fit inside
LABELS = {"true positive": 1, "false positive": 2, "false negative": 3}


def viewer_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """In-plane size at most ``size`` on the larger side, proportions kept (never enlarged)."""
    scale = min(1.0, size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxel (row, column, slice) to mm, so that the viewer's axial view shows a slice as the mask pictures
    do: rows from top to bottom (anterior to posterior), columns from left to right."""
    slices, rows, columns = spacing
    return np.array([[0.0, columns, 0, 0], [-rows, 0, 0, 0], [0, 0, slices, 0], [0, 0, 0, 1]])


def _nifti(volume: np.ndarray, spacing: tuple[float, float, float], slope: float = 1.0, inter: float = 0.0) -> bytes:
    """Slices-first (S, H, W) uint8 -> gzipped NIfTI bytes in the study's layout (H, W, S), voxel size in mm."""
    image = nib.Nifti1Image(np.ascontiguousarray(np.moveaxis(volume, 0, -1)), _affine(spacing))
    image.header.set_data_dtype(np.uint8)
    image.header.set_slope_inter(slope, inter)
    image.header.set_xyzt_units("mm")
    return gzip.compress(image.to_bytes(), compresslevel=9, mtime=0)  # mtime 0: the same bytes every time


def _scaled_spacing(spacing: tuple[float, float, float], native: tuple[int, int], shape: tuple[int, int]):
    return (spacing[0], spacing[1] * native[0] / shape[0], spacing[2] * native[1] / shape[1])


def ct_volume(image_hu: np.ndarray, spacing: tuple[float, float, float], size: int) -> bytes:
    """A test volume's CT (slices first, HU) for the viewer."""
    shape = viewer_shape(image_hu.shape[1], image_hu.shape[2], size)
    low, high = HU_RANGE
    resized = transforms.resize_images(np.asarray(image_hu, dtype=np.float32), *shape)
    scale = (high - low) / 255.0
    stored = np.round((np.clip(resized, low, high) - low) / scale).astype(np.uint8)
    return _nifti(stored, _scaled_spacing(spacing, image_hu.shape[1:], shape), slope=scale, inter=low)


def label_volume(prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float], size: int) -> bytes:
    """A model's prediction against the ground truth (both slices first, binary) as TP/FP/FN labels."""
    shape = viewer_shape(truth.shape[1], truth.shape[2], size)
    predicted = transforms.resize_masks(np.asarray(prediction, dtype=np.uint8), *shape).astype(bool)
    expected = transforms.resize_masks(np.asarray(truth, dtype=np.uint8), *shape).astype(bool)
    labels = np.zeros(predicted.shape, dtype=np.uint8)
    labels[predicted & expected] = LABELS["true positive"]
    labels[predicted & ~expected] = LABELS["false positive"]
    labels[~predicted & expected] = LABELS["false negative"]
    return _nifti(labels, _scaled_spacing(spacing, truth.shape[1:], shape))


def shown_volumes(requested: list[str], typical: str, worst, volume_dirs: dict[str, str]) -> list[str]:
    """The volume folders the viewer shows for one model, each once, in the order of params ``viewer.volumes``:
    ``median_target`` is ``typical`` (the experiment's folder from ``median_target_volume``), ``worst`` is
    ``worst()`` (called only when asked for: the folder of the model's lowest Dice), a file name is that
    volume's folder; a name that is not a test volume of ``volume_dirs`` (file name -> folder) is left out."""
    chosen = []
    for volume in requested:
        if volume == "median_target":
            chosen.append(typical)
        elif volume == "worst":
            chosen.append(worst())
        elif volume in volume_dirs:
            chosen.append(volume_dirs[volume])
    return list(dict.fromkeys(chosen))


def median_target_volume(target_voxels: dict[str, int]) -> str:
    """The test volume whose target is of median size (a typical case, the same for every model of an
    experiment, so that models can be set side by side): the lower median, ties broken by name."""
    ordered = sorted(target_voxels, key=lambda name: (target_voxels[name], name))
    return ordered[(len(ordered) - 1) // 2]
