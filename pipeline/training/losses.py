"""Soft Dice losses on logits, computed per sample in fp32 (fp16 overflows at 512 x 512) and averaged.

``dice_paper``: the paper's formula, 1 - 2 sum(y p) / (sum(y^2) + sum(p^2) + 1e-5).
``dice_code``: what the published code computed: a linear denominator, 1 - 2 sum(y p) / (sum(y) + sum(p) + 1e-6),
and zero loss for a sample whose target is empty (so empty slices taught nothing).
"""

import torch


def dice_paper(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p, y = torch.sigmoid(logits.float()).flatten(1), target.float().flatten(1)
    return 1 - 2 * (y * p).sum(1) / ((y * y).sum(1) + (p * p).sum(1) + 1e-5)


def dice_code(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p, y = torch.sigmoid(logits.float()).flatten(1), target.float().flatten(1)
    loss = 1 - 2 * (y * p).sum(1) / (y.sum(1) + p.sum(1) + 1e-6)
    return torch.where(y.sum(1) > 0, loss, torch.zeros_like(loss))


LOSSES = {"dice_paper": dice_paper, "dice_code": dice_code}


def per_sample_loss(name: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) losses; the training step averages them over the batch."""
    return LOSSES[name](logits, target)
