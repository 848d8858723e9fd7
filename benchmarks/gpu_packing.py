"""Does training K models at once on one GPU raise the grid's throughput? (K = 1, 2, 4, 8; no cluster needed)

    python -m benchmarks.gpu_packing                              # 512 x 512, a mix of grid models
    python -m benchmarks.gpu_packing --device cpu --size 64 --images 8 --packs 1,2   # a smoke run

For each model and each K, K processes start together (as Ray runs K tasks with ``num_gpus=1/K``: one process
and one CUDA context each), each trains a copy of the model with the pipeline's own loop (benchmarks.gpu_train)
on the same synthetic 80-slice set; the wall time until the last one ends gives the aggregate rate, training
images per second summed over the K copies. Prints one row per model and K (aggregate rate, speed-up over
K = 1, peak memory of one process) and a last line with the K of the best mean speed-up over the models and,
given ``--grid-hours`` (benchmarks.gpu_train's one-at-a-time prediction), the predicted wall time of the
600-model, 200-epoch grid at that K.
"""

import argparse
import multiprocessing
import time

import torch

from benchmarks import gpu_train
from pipeline.core import profiles
from pipeline.core.cells import Cell
from pipeline.core.config import parse_params

# Small, middle and large models of the grid: packing helps small models most.
MODELS = ("pspnet-resnet18", "unet-resnet18", "linknet-resnet34", "unet-efficientnet-b0", "fpn-resnet50")


def _train_one(model_name: str, device: str, size: int, images: int, epochs: int, start, results) -> None:
    architecture, encoder = model_name.split("-", 1)
    params = parse_params(profiles.compose("paper", gpu_train.ROOT / "conf")).train
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(images, 1, size, size, generator=generator).to(device)
    masks = (torch.rand(images, 2, size, size, generator=generator) > 0.7).float().to(device)
    val = max(2, images // 4)
    start.wait()  # every process begins its timed work together
    try:
        train_rate, infer_rate = gpu_train.ours(Cell("lesion_a", architecture, encoder, "random"), params, image,
                                                masks, image[:val], masks[:val], epochs)  # fmt: skip
        peak = torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else 0.0
        results.put((model_name, train_rate, infer_rate, peak, ""))
    except torch.OutOfMemoryError as error:
        results.put((model_name, 0.0, 0.0, 0.0, f"out of memory: {error}".splitlines()[0]))


def measure_pack(model: str, k: int, device: str, size: int, images: int, epochs: int) -> dict:
    """K copies of a model trained at once, each in its own process; their summed training rate."""
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    start, results = context.Barrier(k + 1), context.Queue()
    workers = [context.Process(target=_train_one, args=(model, device, size, images, epochs, start, results))
               for _ in range(k)]  # fmt: skip
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    rows = [results.get() for _ in workers]
    wall = time.perf_counter() - began
    for worker in workers:
        worker.join()
    failed = [row for row in rows if row[4]]
    # Summed over the K models: each trained `images * epochs` images (plus its untimed warm-up) in `wall`.
    return {"k": k, "wall": wall, "failed": len(failed), "rate": sum(images * epochs for r in rows if not r[4]) / wall,
            "peak_gb": max(row[3] for row in rows)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per model")
    parser.add_argument("--packs", default="1,2,4,8", help="values of K")
    parser.add_argument("--models", default=",".join(MODELS), help="architecture-encoder pairs, comma-separated")
    parser.add_argument("--grid-hours", type=float, help="one-at-a-time grid hours from benchmarks.gpu_train")
    args = parser.parse_args()
    packs = [int(value) for value in args.packs.split(",")]
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}; {args.size} x {args.size}, {args.images} slices, {args.epochs} epochs per model")
    print(f"{'model':<24} {'K':>3} {'wall s':>8} {'images/s (sum)':>15} {'speed-up':>9} {'peak GB/proc':>13} "
          f"{'failed':>7}")  # fmt: skip
    speedups: dict[int, list[float]] = {k: [] for k in packs}
    for model in args.models.split(","):
        baseline = None
        for k in packs:
            row = measure_pack(model, k, args.device, args.size, args.images, args.epochs)
            baseline = baseline or row["rate"]
            speedup = row["rate"] / baseline if not row["failed"] else 0.0
            speedups[k].append(speedup)
            print(f"{model:<24} {k:>3} {row['wall']:>8.1f} {row['rate']:>15.1f} {speedup:>8.2f}x "
                  f"{row['peak_gb']:>13.2f} {row['failed']:>7}")  # fmt: skip
    mean = {k: sum(values) / len(values) for k, values in speedups.items()}
    best = max(mean, key=mean.get)
    line = f"best K = {best}: mean speed-up {mean[best]:.2f}x over one model per GPU"
    if args.grid_hours:
        line += f"; predicted full grid on this device: {args.grid_hours / mean[best]:.1f} h"
    print(line)


if __name__ == "__main__":
    main()
