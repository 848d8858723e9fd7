"""Training throughput on a GPU: the pipeline's loop vs a naive loop, and the predicted wall time of the grid.

    python -m benchmarks.gpu_train                               # a representative set of models, 512 x 512
    python -m benchmarks.gpu_train --models all                  # all 100 architecture x encoder pairs
    python -m benchmarks.gpu_train --device cpu --size 64 --images 8 --models unet-resnet18 --workers 0

For each model, on the same device and the same synthetic 80-slice training set:
- ours: pipeline.training.train.train_epoch (data on the device, batched augmentation there, bf16 autocast with the
  loss in fp32, channels_last, cudnn.benchmark, fused Adam, no host sync inside the epoch);
- naive: a DataLoader with CPU augmentation per sample (torchvision), fp32, plain Adam, `.item()` every step.
Validation (inference) throughput is measured too. The predicted wall time of the full grid is
3 experiments x 2 initialisations x epochs x (train slices / train rate + validation slices / inference rate)
per architecture x encoder pair; pairs not measured are estimated from the measured ones by GFLOPs.
Prints one table row per model and a last line with the prediction.
"""

import argparse
import time
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset

from pipeline.core import profiles
from pipeline.core.cells import Cell
from pipeline.core.config import parse_params
from pipeline.core.profiles import paper_grid
from pipeline.model import factory as models
from pipeline.model.device import synchronise
from pipeline.training import losses
from pipeline.training.step import adam
from pipeline.training.train import Setup, evaluate_loss, train_epoch

ROOT = Path(__file__).resolve().parents[1]

REPRESENTATIVE = (
    "unet-resnet18", "unet-mobilenet_v2", "unet-efficientnet-b0", "unet-vgg19", "unet-densenet201",
    "linknet-resnet34", "fpn-resnext50_32x4d", "pspnet-resnet18", "unet-dpn98", "fpn-efficientnet-b6",
)  # fmt: skip


class CpuAugmented(Dataset):
    """The naive data path: per-sample random affine on the CPU, as a DataLoader would feed it."""

    def __init__(self, image: torch.Tensor, masks: torch.Tensor):
        self.image, self.masks = image, masks

    def __len__(self) -> int:
        return self.image.shape[0]

    def __getitem__(self, index):
        angle = float(torch.empty(1).uniform_(-180, 180))
        scale = float(torch.empty(1).uniform_(0.5, 1.5))
        image = TF.affine(self.image[index], angle=angle, translate=[0, 0], scale=scale, shear=[0.0])
        masks = TF.affine(self.masks[index], angle=angle, translate=[0, 0], scale=scale, shear=[0.0])
        if torch.rand(1) < 0.5:
            image, masks = TF.horizontal_flip(image), TF.horizontal_flip(masks)
        return image, masks[1:2]


def ours(cell: Cell, params, image, masks, val_image, val_masks, epochs: int) -> tuple[float, float]:
    device = image.device
    setup = Setup(cell, params, device, -1.0)
    model = models.build_model(cell.architecture, cell.encoder, "random").to(device)
    if setup.cuda:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    optimizer = adam(model.parameters(), 1e-3)
    generator = torch.Generator(device=device).manual_seed(0)
    train_epoch(setup, model, optimizer, image, masks, generator)  # warm-up: cudnn autotuning, allocator
    evaluate_loss(setup, model, val_image, val_masks)
    synchronise(device)
    started = time.perf_counter()
    for _ in range(epochs):
        train_epoch(setup, model, optimizer, image, masks, generator)
    synchronise(device)
    trained = time.perf_counter()
    for _ in range(epochs):
        evaluate_loss(setup, model, val_image, val_masks)
    synchronise(device)
    done = time.perf_counter()
    return image.shape[0] * epochs / (trained - started), val_image.shape[0] * epochs / (done - trained)


def naive(cell: Cell, image, masks, epochs: int, workers: int, device: torch.device) -> float:
    model = models.build_model(cell.architecture, cell.encoder, "random").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(CpuAugmented(image, masks), batch_size=2, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)  # fmt: skip

    def epoch() -> None:
        model.train()
        for inputs, targets in loader:
            logits = model(inputs.to(device))
            loss = losses.dice_paper(logits, targets.to(device)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the usual per-step logging, a host sync

    epoch()
    synchronise(device)
    started = time.perf_counter()
    for _ in range(epochs):
        epoch()
    synchronise(device)
    return image.shape[0] * epochs / (time.perf_counter() - started)


def predicted_grid_hours(measured: dict, size: int, epochs: int, train_slices: int, val_slices: int) -> float:
    """Hours for the 600-model grid on one device, one model at a time."""
    grid = paper_grid(ROOT / "conf")
    flops = {f"{a}-{e}": models.forward_flops(models.build_model(a, e, "random"), size)
             for a in grid.architectures for e in grid.encoders}  # fmt: skip
    # Seconds per GFLOP of one image, from the measured models, for the pairs not measured.
    per_gflop = [(train_slices / t + val_slices / v) / (flops[name] / 1e9) for name, (t, v) in measured.items()]
    fallback = sorted(per_gflop)[len(per_gflop) // 2]
    seconds = 0.0
    for name, gflop in flops.items():
        if name in measured:
            train_rate, infer_rate = measured[name]
            epoch_seconds = train_slices / train_rate + val_slices / infer_rate
        else:
            epoch_seconds = fallback * gflop / 1e9
        seconds += 3 * 2 * epochs * epoch_seconds
    return seconds / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=80, help="training slices (the study: 80)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per loop")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers of the naive loop")
    parser.add_argument("--models", default="representative", help="'representative', 'all' or a,b,c")
    parser.add_argument("--grid-epochs", type=int, default=200)
    args = parser.parse_args()
    device = torch.device(args.device)
    grid = paper_grid(ROOT / "conf")
    names = {
        "representative": list(REPRESENTATIVE),
        "all": [f"{a}-{e}" for a in grid.architectures for e in grid.encoders],
    }
    chosen = names.get(args.models, args.models.split(","))
    params = parse_params(profiles.compose("paper", ROOT / "conf")).train
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(args.images, 1, args.size, args.size, generator=generator)
    masks = (torch.rand(args.images, 2, args.size, args.size, generator=generator) > 0.7).float()
    val_count = max(2, args.images // 4)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}; {args.size} x {args.size}, {args.images} training slices, batch 2")
    print(f"{'model':<28} {'ours img/s':>11} {'naive img/s':>12} {'speed-up':>9} {'infer img/s':>12}")
    measured = {}
    for model_name in chosen:
        architecture, encoder = model_name.split("-", 1)
        cell = Cell("lesion_a", architecture, encoder, "random")
        try:
            rates = ours(cell, params, image.to(device), masks.to(device), image[:val_count].to(device),
                         masks[:val_count].to(device), args.epochs)  # fmt: skip
            slow = naive(cell, image, masks, args.epochs, args.workers, device)
        except torch.OutOfMemoryError:
            print(f"{model_name:<28} out of memory")
            continue
        measured[model_name] = rates
        print(f"{model_name:<28} {rates[0]:>11.1f} {slow:>12.1f} {rates[0] / slow:>8.2f}x {rates[1]:>12.1f}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if measured:
        hours = predicted_grid_hours(measured, args.size, args.grid_epochs, args.images, val_count)
        print(f"predicted full grid (600 models, {args.grid_epochs} epochs, one at a time): {hours:.1f} h "
              f"({hours / 24:.1f} days) on {name}; {len(measured)} of 100 pairs measured")  # fmt: skip
    else:
        print("predicted full grid: no model could be measured")


if __name__ == "__main__":
    main()
