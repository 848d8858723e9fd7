"""Training augmentation on the device, in batches: one random affine per sample, the same for image and masks.

PROTOCOL.md: horizontal flip p=0.5, vertical flip p=0.5, rotation U[-180, 180) degrees, scale U[0.5, 1.5), no
translation. Masks are resampled nearest-neighbour, so they stay binary and aligned with the image. The image
is resampled bilinearly (``image_interpolation: nearest`` is the original code's choice) and the corners that
rotation or shrinking uncover are filled with air (``padding: air``) or with 0 HU as the original did
(``padding: zero_hu``, which is +1.0 after normalisation).
"""

import math

import torch
import torch.nn.functional as F

from pipeline.core.config import AugmentParams


def random_affines(count: int, params: AugmentParams, generator: torch.Generator, device) -> torch.Tensor:
    """(count, 2, 3) matrices mapping output to input coordinates, as ``affine_grid`` expects."""
    uniform = torch.rand(count, 4, generator=generator, device=device)
    angle = (uniform[:, 0] * 2 - 1) * math.radians(params.rotation_deg)
    scale = params.scale_min + uniform[:, 1] * (params.scale_max - params.scale_min)
    flip_x = torch.where(uniform[:, 2] < params.hflip, -1.0, 1.0)
    flip_y = torch.where(uniform[:, 3] < params.vflip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(count, 2, 3, device=device)
    # Sampling at R(angle) / scale of each output point zooms in for scale > 1; flips mirror the axes.
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip_x, -sin * flip_y
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip_x, cos * flip_y
    return theta


def apply_affines(
    theta: torch.Tensor, image: torch.Tensor, masks: torch.Tensor, pad_value: float, image_mode: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample (B, 1, H, W) images and (B, C, H, W) binary masks with the same per-sample transforms."""
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    # grid_sample fills with zeros: shift so that the fill becomes pad_value.
    moved = F.grid_sample(image - pad_value, grid, mode=image_mode, padding_mode="zeros", align_corners=False)
    moved_masks = F.grid_sample(masks, grid.to(masks.dtype), mode="nearest", padding_mode="zeros", align_corners=False)
    return moved + pad_value, moved_masks


def pad_value(params: AugmentParams, hu_offset: float, hu_scale: float) -> float:
    """The normalised value that fills uncovered corners: air (-1000 HU) or 0 HU."""
    hu = -1000.0 if params.padding == "air" else 0.0
    return (hu + hu_offset) / hu_scale


def augment(
    image: torch.Tensor, masks: torch.Tensor, params: AugmentParams, fill: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    theta = random_affines(image.shape[0], params, generator, image.device)
    return apply_affines(theta, image, masks, fill, params.image_interpolation)
