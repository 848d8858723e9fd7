"""The model factory: a grid cell -> a segmentation-models-pytorch model per PROTOCOL.md (Table I defaults).

One input channel, one output channel (logits; sigmoid at inference), smp's default decoder settings, which
are the paper's Table I. ``encoder_weights`` is always passed explicitly (smp defaults to ImageNet).

ImageNet weights come only from the Hugging Face hub (``smp-hub/<encoder>.imagenet`` at the revision smp pins).
They are fetched once, on a machine with internet, into weights/imagenet/ (a Hugging Face cache that DVC
tracks: ``python -m pipeline.model.weights``), and loaded from there strictly offline. Loading follows smp's own
path: the 3-channel encoder takes the cached state dict, then its first convolution is summed over RGB for
the single CT channel.
"""

import copy
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import nn

from pipeline.core.errors import PipelineError
from pipeline.core.paths import IMAGENET_DIR


def imagenet_source(encoder: str) -> tuple[str, str]:
    """(Hugging Face repo id, pinned revision) of an encoder's ImageNet weights, as smp pins them."""
    settings = smp.encoders.encoders[encoder]["pretrained_settings"].get("imagenet")
    if settings is None:
        raise PipelineError(f"encoder {encoder} has no ImageNet weights in segmentation-models-pytorch")
    return settings["repo_id"], settings["revision"]


def imagenet_state_dict(encoder: str, cache_dir: Path = IMAGENET_DIR) -> dict[str, torch.Tensor]:
    """The cached 3-channel ImageNet state dict of an encoder, never touching the network."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from safetensors.torch import load_file

    repo_id, revision = imagenet_source(encoder)
    try:
        path = hf_hub_download(
            repo_id, "model.safetensors", revision=revision, cache_dir=cache_dir, local_files_only=True
        )
    except LocalEntryNotFoundError:
        raise PipelineError(
            f"{cache_dir}: no ImageNet weights for {encoder} ({repo_id}@{revision[:7]}); fetch them with "
            "`dvc pull weights` or, on a machine with internet, `dvc repro weights`"
        ) from None
    return load_file(path, device="cpu")


def architecture_names() -> list[str]:
    """The architectures segmentation-models-pytorch builds (its aliases with a '-' left out: ids split on it)."""
    return [name for name in smp.MODEL_ARCHITECTURES_MAPPING if "-" not in name]


def check_names(architectures, encoders, source: str = "params.yaml: section 'grid'") -> None:
    """Refuse an architecture or encoder that segmentation-models-pytorch does not know, listing what it does:
    called by every stage that builds networks, so a typo in the grid stops the first of them."""
    for kind, names, valid in (("architecture", architectures, architecture_names()),
                               ("encoder", encoders, smp.encoders.get_encoder_names())):  # fmt: skip
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise PipelineError(f"{source}: unknown {kind} '{unknown[0]}'; valid: {', '.join(valid)}")


def build_model(architecture: str, encoder: str, weights: str, cache_dir: Path = IMAGENET_DIR) -> nn.Module:
    """A model of the grid with 1 input channel and 1 output channel."""
    if weights == "random":
        return smp.create_model(architecture, encoder_name=encoder, encoder_weights=None, in_channels=1, classes=1)
    if weights != "imagenet":
        raise ValueError(f"unknown weights '{weights}'; valid: random, imagenet")
    state = imagenet_state_dict(encoder, cache_dir)
    model = smp.create_model(architecture, encoder_name=encoder, encoder_weights=None, in_channels=3, classes=1)
    model.encoder.load_state_dict(state)
    # As smp does after loading: one channel, first kernel summed over RGB.
    model.encoder.set_in_channels(1, pretrained=True)
    return model


def count_parameters(model: nn.Module) -> int:
    """All parameters, as the paper counted them (PSPNet and EfficientNet keep some they never use)."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_trained_parameters(model: nn.Module) -> int:
    """Parameters that received a gradient in the last backward pass."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.grad is not None)


def forward_flops(model: nn.Module, size: int) -> int:
    """Floating-point operations of one forward pass on a 1 x 1 x size x size input (counted on meta tensors)."""
    from torch.utils.flop_counter import FlopCounterMode

    shadow = copy.deepcopy(model).to("meta").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        shadow(torch.empty(1, 1, size, size, device="meta"))
    return int(counter.get_total_flops())
