"""The one training step of the project: training (pipeline.training.train), the speed stage's timing
(pipeline.evaluation.speed) and the training benchmarks all call it, so what is timed is what is trained."""

import torch

from pipeline.training.losses import per_sample_loss


def adam(parameters, learning_rate: float) -> torch.optim.Adam:
    """The optimiser of every training (PROTOCOL.md: Adam, betas 0.9 and 0.999, eps 1e-8, no weight decay), in
    PyTorch's fused implementation on every device, the CPU included: one kernel over all the parameters, where
    the default loop runs several per parameter tensor (measured on one CPU thread, 80 images at 64 x 64 in
    batches of 4: Unet-resnet18 4.8 s -> 3.4 s an epoch, FPN-resnet18 3.3 s -> 3.1 s). The same algorithm; it
    rounds differently in the last bits, so its weights are not bit for bit those of the loop's."""
    return torch.optim.Adam(parameters, lr=learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)


def training_step(model, optimizer, inputs, targets, loss: str, autocast):
    """One optimisation step, the only one in the project (training, the speed stage's timing and the training
    benchmarks): forward under ``autocast`` (bf16 on CUDA), the per-sample ``loss`` in fp32, backward, the
    optimiser's step. Returns the per-sample losses, detached, still on the device (no host synchronisation)."""
    with autocast:
        logits = model(inputs)
    values = per_sample_loss(loss, logits, targets)
    optimizer.zero_grad(set_to_none=True)
    values.mean().backward()
    optimizer.step()
    return values.detach()
