"""Segment CT slices with a trained model: the one code path that evaluation and ``predict`` share.

A scan in its own geometry (slices first, Hounsfield units) is normalised and resized to the model's working
size exactly as in training (pipeline.data.transforms), the model's probabilities are resized back to the scan's
grid (bilinear) and thresholded.
"""

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline.core.errors import PipelineError
from pipeline.core.experiments import experiment
from pipeline.data import transforms


@torch.no_grad()
def probabilities(
    model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 8, progress: bool = False
) -> np.ndarray:
    """Sigmoid outputs (N, S, S) for normalised inputs (N, S, S) at the working size."""
    device = next(model.parameters()).device
    out = np.empty(inputs.shape, dtype=np.float32)
    starts = range(0, inputs.shape[0], batch_size)
    for start in tqdm(starts, desc="segment", unit="batch", disable=not progress, leave=False):
        batch = torch.from_numpy(np.array(inputs[start : start + batch_size], dtype=np.float32))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(batch[:, None].to(device))
        out[start : start + batch_size] = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
    return out


def model_inputs(name: str, image_hu: np.ndarray, lung: np.ndarray | None, preprocess: dict) -> np.ndarray:
    """Normalised working-size inputs (N, S, S) of a scan in its own geometry (N, H, W)."""
    size = preprocess["size"]
    image = transforms.normalise(image_hu, preprocess["hu_offset"], preprocess["hu_scale"])
    image = transforms.resize_images(image, size, size)
    chosen = experiment(name)
    if not chosen.inside_lungs:
        return image
    if lung is None:
        raise PipelineError(f"a {name} model needs the scan's lung mask")
    return chosen.inputs(image, transforms.resize_masks(transforms.binarise(lung), size, size).astype(np.float32))


def to_native(probs: np.ndarray, height: int, width: int, threshold: float) -> np.ndarray:
    """Working-size probabilities back on the scan's grid, thresholded to a binary uint8 mask."""
    out = np.empty((probs.shape[0], height, width), dtype=np.uint8)
    for start in range(0, probs.shape[0], transforms.CHUNK_SLICES):
        chunk = torch.from_numpy(probs[start : start + transforms.CHUNK_SLICES])[:, None]
        resized = F.interpolate(chunk, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        out[start : start + transforms.CHUNK_SLICES] = (resized >= threshold).numpy()
    return out
