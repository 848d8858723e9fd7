"""The study's preprocessing of one stack of slices, shared by the preprocess stage and by prediction.

PROTOCOL.md, Preprocessing: resize every slice to the working size, normalise x -> (x + 500) / 500, any
nonzero label is foreground. Decisions where the protocol leaves a choice:
- images are resized with antialiased bilinear interpolation (what PIL's bilinear did in the original);
- masks are binarised first, then resized as a coverage fraction with the same filter and thresholded at
  0.5, so they stay binary and keep their area (the original resized label values 1-3 and binarised after,
  which slightly dilates multi-label regions);
- non-square slices are resized to a square working size (all of the study's data is square).
Arrays here are slices-first, (N, H, W).
"""

import numpy as np
import torch
import torch.nn.functional as F

CHUNK_SLICES = 32  # bounds memory when resizing hundreds of full-size slices


def normalise(hu: np.ndarray, offset: float, scale: float) -> np.ndarray:
    """(hu + offset) / scale in float32, with a single new array (volumes are hundreds of MB)."""
    out = np.asarray(hu, dtype=np.float32) + np.float32(offset)
    out /= np.float32(scale)
    return out


def binarise(labels: np.ndarray) -> np.ndarray:
    return (labels > 0).astype(np.uint8)


def _resize(stack: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.empty((stack.shape[0], height, width), dtype=np.float32)
    for start in range(0, stack.shape[0], CHUNK_SLICES):
        # Strided views (slices_first) go to torch as they are: copying them in numpy first costs more.
        chunk = torch.from_numpy(np.asarray(stack[start : start + CHUNK_SLICES], dtype=np.float32))
        resized = F.interpolate(chunk[:, None], size=(height, width), mode="bilinear", antialias=True)
        out[start : start + CHUNK_SLICES] = resized[:, 0].numpy()
    return out


def resize_images(stack: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, H, W) float images to (N, height, width) with antialiased bilinear interpolation."""
    if stack.shape[1:] == (height, width):
        return stack.astype(np.float32, copy=False)
    return _resize(stack, height, width)


def resize_masks(stack: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, H, W) binary masks to (N, height, width): resized coverage thresholded at 0.5, still binary."""
    if stack.shape[1:] == (height, width):
        return stack.astype(np.uint8, copy=False)
    return (_resize(stack, height, width) >= 0.5).astype(np.uint8)


def slices_first(volume: np.ndarray) -> np.ndarray:
    """(H, W, S) as nibabel returns it, to (S, H, W): slice k is volume[:, :, k] (no reorientation)."""
    return np.moveaxis(volume, -1, 0)
