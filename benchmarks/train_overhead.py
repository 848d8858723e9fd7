"""Training-loop overhead: the pipeline's full training step vs a bare forward + backward + Adam step.

    python -m benchmarks.train_overhead                  # 128x128 on the CPU, a few encoders
    python -m benchmarks.train_overhead --size 512 --device cuda

Both loops train the same model on the same data on the same device. The pipeline's step (train.train_epoch)
adds what the protocol needs: random order, batched affine augmentation of image and masks on the device,
the experiment's input, the per-sample Dice loss. The bare step reuses one fixed batch with the same loss. The
target (issue 3) is an overhead within 10 % on this CPU at 128 x 128.
"""

import argparse
import time
from pathlib import Path

import torch

from pipeline.core import profiles
from pipeline.core.cells import Cell
from pipeline.core.config import parse_params
from pipeline.model import factory as models
from pipeline.model.device import synchronise
from pipeline.training.step import adam, training_step
from pipeline.training.train import Setup, train_epoch

ROOT = Path(__file__).resolve().parents[1]

MODELS = (("unet", "resnet18"), ("fpn", "resnet18"), ("unet", "mobilenet_v2"), ("linknet", "efficientnet-b0"))


def synthetic_set(count: int, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(count, 1, size, size, generator=generator)
    masks = (torch.rand(count, 2, size, size, generator=generator) > 0.7).float()
    return image.to(device), masks.to(device)


def time_pipeline(setup, model, image, masks, epochs: int) -> float:
    optimizer = adam(model.parameters(), 1e-3)
    generator = torch.Generator(device=image.device).manual_seed(0)
    train_epoch(setup, model, optimizer, image, masks, generator)  # warm-up
    synchronise(image.device)
    started = time.perf_counter()
    for _ in range(epochs):
        train_epoch(setup, model, optimizer, image, masks, generator)
    synchronise(image.device)
    return (time.perf_counter() - started) / (epochs * image.shape[0])


def time_bare(setup, model, image, masks, epochs: int) -> float:
    optimizer = adam(model.parameters(), 1e-3)
    batch, target = setup.to_device(image[:2]), masks[:2, :1]
    steps = epochs * image.shape[0] // 2

    def one_step():
        training_step(model, optimizer, batch, target, "dice_paper", setup.autocast())

    model.train()
    one_step()
    synchronise(image.device)
    started = time.perf_counter()
    for _ in range(steps):
        one_step()
    synchronise(image.device)
    return (time.perf_counter() - started) / (steps * 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=16, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    params = parse_params(profiles.compose("paper", ROOT / "conf")).train
    image, masks = synthetic_set(args.images, args.size, device)
    print(f"{'model':<28} {'pipeline ms/img':>16} {'bare ms/img':>12} {'overhead':>9}   ({device}, {args.size}px)")
    for architecture, encoder in MODELS:
        setup = Setup(Cell("lesion_b", architecture, encoder, "random"), params, device, -1.0)
        results = []
        for timer in (time_pipeline, time_bare):
            torch.manual_seed(0)
            model = models.build_model(architecture, encoder, "random").to(device)
            if setup.cuda:
                model = model.to(memory_format=torch.channels_last)
            results.append(timer(setup, model, image, masks, args.epochs))
        pipeline, bare = results
        name = f"{architecture}-{encoder}"
        print(f"{name:<28} {pipeline * 1e3:>16.1f} {bare * 1e3:>12.1f} {pipeline / bare - 1:>+9.1%}")


if __name__ == "__main__":
    main()
