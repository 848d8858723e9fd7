"""The one training step of the project: training (pipeline.training.train), the speed stage's timing
(pipeline.evaluation.speed) and the training benchmarks all call it, so what is timed is what is trained."""

from pipeline.training.losses import per_sample_loss


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
