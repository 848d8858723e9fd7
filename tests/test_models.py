"""The model factory: the paper's parameter counts, and ImageNet weights from an offline cache."""

import csv
import json
import os
import subprocess
import sys

import pytest
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

from pipeline.core.errors import PipelineError
from pipeline.model import factory as models
from tests.conftest import ROOT


def _paper_rows():
    with open(ROOT / "reference" / "paper_table2_performance.csv") as handle:
        rows = {(row["architecture"], row["encoder"]): float(row["params_m"]) for row in csv.DictReader(handle)}
    # The eight models whose parameter counts the paper's text names.
    named = [("unet", "vgg11"), ("unet", "resnet18"), ("linknet", "resnet18"), ("unet", "resnet50"),
             ("unet", "densenet121"), ("unet", "mobilenet_v2"), ("linknet", "mobilenet_v2"),
             ("unet", "efficientnet-b0")]  # fmt: skip
    return [(architecture, encoder, rows[architecture, encoder]) for architecture, encoder in named]


@pytest.mark.parametrize(("architecture", "encoder", "paper_millions"), _paper_rows())
def test_parameter_counts_match_the_paper(architecture, encoder, paper_millions):
    model = models.build_model(architecture, encoder, "random")
    assert round(models.count_parameters(model) / 1e6, 2) == paper_millions


def test_one_channel_in_one_channel_out():
    model = models.build_model("fpn", "resnet18", "random").eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 1, 64, 64)


def test_forward_flops_of_unet_resnet18():
    # 1 multiply-add counts 2 FLOPs; at 512x512 Unet-resnet18 does about 42.4 GFLOPs per slice.
    assert models.forward_flops(models.build_model("unet", "resnet18", "random"), 512) / 1e9 == pytest.approx(
        42.36, abs=0.05
    )


def _synthetic_imagenet_cache(cache_dir, encoder="resnet18"):
    """An encoder's 'ImageNet' weights (random numbers) in the real Hugging Face cache layout."""
    repo_id, revision = models.imagenet_source(encoder)
    snapshot = cache_dir / f"models--{repo_id.replace('/', '--')}" / "snapshots" / revision
    snapshot.mkdir(parents=True)
    torch.manual_seed(0)
    state = smp.encoders.get_encoder(encoder, in_channels=3, weights=None).state_dict()
    state = {name: tensor + torch.randn_like(tensor.float()).to(tensor.dtype) for name, tensor in state.items()}
    save_file({name: tensor.contiguous() for name, tensor in state.items()}, snapshot / "model.safetensors")
    (snapshot / "config.json").write_text(json.dumps({"encoder": encoder}))
    return state


def test_imagenet_weights_load_from_the_cache_with_rgb_summed_first_conv(tmp_path):
    cached = _synthetic_imagenet_cache(tmp_path)
    model = models.build_model("unet", "resnet18", "imagenet", cache_dir=tmp_path)
    first = model.encoder.conv1.weight
    assert first.shape[1] == 1
    torch.testing.assert_close(first, cached["conv1.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight, cached["layer4.1.conv2.weight"])


@pytest.mark.slow
def test_our_loading_equals_smps_own_offline_path(tmp_path):
    _synthetic_imagenet_cache(tmp_path)
    ours = models.build_model("linknet", "resnet18", "imagenet", cache_dir=tmp_path).encoder.state_dict()
    torch.save(ours, tmp_path / "ours.pt")
    script = (
        "import torch, segmentation_models_pytorch as smp\n"
        "m = smp.create_model('linknet', encoder_name='resnet18', encoder_weights='imagenet',\n"
        "                     in_channels=1, classes=1)\n"
        f"ours = torch.load({str(tmp_path / 'ours.pt')!r})\n"
        "assert all(torch.equal(ours[k], v) for k, v in m.encoder.state_dict().items())\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_missing_cache_says_how_to_fetch(tmp_path):
    with pytest.raises(PipelineError, match=r"no ImageNet weights for resnet34 .*`dvc pull weights`"):
        models.build_model("unet", "resnet34", "imagenet", cache_dir=tmp_path)
