"""Prediction on the CPU: volumes/s of `predict` and its overhead over the bare model forward.

    python -m benchmarks.predict_cpu                         # 512 x 512 x 100 volume, models at 256 x 256
    python -m benchmarks.predict_cpu --working-size 512      # the paper's working size (slower)

Segments one synthetic 512 x 512 x 100 CT volume (pipeline.data.phantom) with three models of different size
(untrained weights: speed does not depend on them) through pipeline.predict's Segmenter, and times the bare
forward passes on the same preprocessed slices. Overhead = predict / bare - 1; the target (issue 5) is 15 %.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.core.cells import Cell
from pipeline.data import phantom
from pipeline.model import checkpoints
from pipeline.model import factory as models
from pipeline.model.inference import model_inputs
from pipeline.predict import load_model

MODELS = (("pspnet", "resnet18"), ("unet", "mobilenet_v2"), ("unet", "resnet50"))


def synthetic_volume(size: int, slices: int) -> np.ndarray:
    image, _, _ = phantom.test_volume(seed=1, index=1, size=size, slices_min=slices, slices_max=slices, noise_hu=20.0)
    return image.astype(np.float32)


def save_untrained(directory: Path, architecture: str, encoder: str, size: int) -> Path:
    """An untrained model folder, as the train stage writes one (speed does not depend on the weights)."""
    torch.manual_seed(0)
    model = models.build_model(architecture, encoder, "random")
    folder = directory / f"{architecture}-{encoder}"
    folder.mkdir(parents=True, exist_ok=True)
    preprocess = {"size": size, "hu_offset": 500.0, "hu_scale": 500.0}
    checkpoints.save(model.state_dict(), Cell("lung", architecture, encoder, "random"), preprocess, folder)
    return folder


def timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


@torch.no_grad()
def bare_forward(model: torch.nn.Module, inputs: np.ndarray, batch_size: int = 8) -> float:
    started = time.perf_counter()
    for start in range(0, inputs.shape[0], batch_size):
        model(torch.from_numpy(np.array(inputs[start : start + batch_size]))[:, None])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="in-plane size of the volume")
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--working-size", type=int, default=256, help="the models' working size")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the fastest counts")
    args = parser.parse_args()
    volume = synthetic_volume(args.size, args.slices)
    print(f"volume {volume.shape}, models at {args.working_size} x {args.working_size}, "
          f"cpu with {torch.get_num_threads()} threads")  # fmt: skip
    print(f"{'model':<22} {'params M':>9} {'predict s':>10} {'volumes/s':>10} {'bare s':>8} {'overhead':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        for architecture, encoder in MODELS:
            segmenter = load_model(save_untrained(Path(scratch), architecture, encoder, args.working_size), "cpu")
            segmenter.segment(volume[..., :8])  # warm-up
            inputs = model_inputs("lung", np.moveaxis(volume, -1, 0), None, segmenter.preprocess)
            # The best of a few runs of each: this machine's two cores are shared and timings jitter.
            predict = min(timed(segmenter.segment, volume) for _ in range(args.repeats))
            bare = min(bare_forward(segmenter.model, inputs) for _ in range(args.repeats))
            millions = models.count_parameters(segmenter.model) / 1e6
            print(f"{architecture + '-' + encoder:<22} {millions:>9.2f} {predict:>10.1f} {1 / predict:>10.3f} "
                  f"{bare:>8.1f} {predict / bare - 1:>+9.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
