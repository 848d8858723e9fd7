"""Every GPU measurement of the project in one run, into one table: for the first task lent a GPU.

    python -m benchmarks.device_check                       # on a GPU machine: under 8 minutes on one H100/H200
    python -m benchmarks.device_check --smoke               # a tiny run on the CPU (what the tests run)

Rows, each with the command that gives the full measurement:

1. training: the pipeline's loop against a naive one (benchmarks.gpu_train), images/s, for a few grid models;
2. packing: K = 1, 2, 4, 8 models trained at once on the GPU (benchmarks.gpu_packing), aggregate images/s;
3. evaluation at the paper's geometry (benchmarks.evaluate_scale's parts): inference of one model over the
   test slices on the GPU, and the CPU parts (resampling, overlap, NSD/HD95) measured beside it;
4. predict: one 512 x 512 x 100 volume segmented with ``pipeline.predict`` (benchmarks.predict_cpu);
5. speed: the ``speed`` stage's dedicated timing of a few networks (pipeline.evaluation.speed).

Writes the table as Markdown (``--out``, default device_check.md) and prints it; the last line says where.
"""

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import evaluate_scale, gpu_packing, gpu_train, predict_cpu
from pipeline.core import profiles
from pipeline.core.cells import Cell
from pipeline.core.config import parse_params
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.evaluation.speed import time_network
from pipeline.predict import load_model

SIZES = {  # full: the paper's geometry; smoke: seconds on a CPU
    "full": {"size": 512, "images": 80, "epochs": 2, "packs": (1, 2, 4, 8), "native": 630, "slices": (60, 125),
             "volume": (512, 100), "models": ("unet-resnet18", "fpn-resnet50", "unet-efficientnet-b0")},
    "smoke": {"size": 32, "images": 4, "epochs": 1, "packs": (1, 2), "native": 64, "slices": (3, 4),
              "volume": (48, 6), "models": ("unet-resnet18",)},
}  # fmt: skip


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def training_rows(device: torch.device, s: dict) -> list[tuple[str, str, str]]:
    params = parse_params(profiles.compose("paper", gpu_train.ROOT / "conf")).train
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(s["images"], 1, s["size"], s["size"], generator=generator)
    masks = (torch.rand(s["images"], 2, s["size"], s["size"], generator=generator) > 0.7).float()
    val = max(2, s["images"] // 4)
    rows = []
    for name in s["models"]:
        architecture, encoder = name.split("-", 1)
        cell = Cell("lesion_a", architecture, encoder, "random")
        on = image.to(device), masks.to(device), image[:val].to(device), masks[:val].to(device)
        train_rate, infer_rate = gpu_train.ours(cell, params, *on, epochs=s["epochs"])
        naive = gpu_train.naive(cell, image, masks, s["epochs"], workers=0 if device.type == "cpu" else 8,
                                device=device)  # fmt: skip
        result = f"ours {train_rate:.1f} img/s (inference {infer_rate:.1f}); naive {naive:.1f} img/s"
        rows.append((f"training {name}, {s['size']} px", f"{result}; x{train_rate / naive:.2f}",
                     "python -m benchmarks.gpu_train"))  # fmt: skip
    return rows


def packing_rows(device: torch.device, s: dict) -> list[tuple[str, str, str]]:
    results = [gpu_packing.measure_pack(s["models"][0], k, str(device), s["size"], s["images"], s["epochs"])
               for k in s["packs"]]  # fmt: skip
    base = results[0]["rate"]
    text = "; ".join(f"K={r['k']}: {r['rate']:.1f} img/s (x{r['rate'] / base:.2f}, {r['peak_gb']:.1f} GB"
                     f"{', ' + str(r['failed']) + ' failed' if r['failed'] else ''})" for r in results)  # fmt: skip
    return [(f"packing {s['models'][0]}", text, "python -m benchmarks.gpu_packing")]


def evaluation_rows(device: torch.device, s: dict, scratch: Path) -> list[tuple[str, str, str]]:
    prepared = evaluate_scale.prepare(scratch / "evaluate", s["native"], s["size"], *s["slices"])
    test = HeldOutSet.load(prepared)
    times = evaluate_scale.measure(test, infer_slices=len(test.split), tolerance_mm=1.0, device=device)
    slices = len(test.split)
    parts = ", ".join(f"{part} {seconds:.1f} s" for part, seconds in times.items())
    result = f"{parts}; inference {slices / times['inference']:.0f} slices/s"
    name = f"evaluation, {len(test.volume_rows)} volumes, {slices} slices at {s['native']} px"
    return [(name, result, "python -m benchmarks.evaluate_scale")]


def predict_rows(device: torch.device, s: dict, scratch: Path) -> list[tuple[str, str, str]]:
    size, slices = s["volume"]
    volume = predict_cpu.synthetic_volume(size, slices)
    segmenter = load_model(predict_cpu.save_untrained(scratch, "unet", "resnet18", s["size"]), device.type)
    segmenter.segment(volume[..., :4])  # warm-up
    started = time.perf_counter()
    segmenter.segment(volume)
    seconds = time.perf_counter() - started
    return [(f"predict unet-resnet18, {size} x {size} x {slices}", f"{seconds:.2f} s per volume",
             "python -m benchmarks.predict_cpu")]  # fmt: skip


def speed_rows(device: torch.device, s: dict) -> list[tuple[str, str, str]]:
    rows = []
    for name in s["models"]:
        architecture, encoder = name.split("-", 1)
        timing = time_network(architecture, encoder, s["size"], 8, 2, device, warmup=2, repeats=5)
        rows.append((f"speed stage {name}, {s['size']} px",
                     f"inference {timing['infer_images_per_s']:.1f} img/s (batch 8), training "
                     f"{timing['train_images_per_s']:.1f} img/s (batch 2)",
                     "python -m pipeline.evaluation.speed"))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script runs")
    parser.add_argument("--out", type=Path, default=Path("device_check.md"))
    args = parser.parse_args()
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    s = SIZES["smoke" if args.smoke else "full"]
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="device-check-"))
    rows: list[tuple[str, str, str]] = []
    try:
        for section in (training_rows, packing_rows, speed_rows):
            rows += section(device, s)
        rows += predict_rows(device, s, scratch)
        rows += evaluation_rows(device, s, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started
    lines = [f"Device check on {device_name(device)}, torch {torch.__version__}, {elapsed:.0f} s"
             f"{' (smoke run: tiny sizes, not a measurement)' if args.smoke else ''}", "",
             "| measurement | result | full command |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {result} | `{command}` |" for name, result, command in rows]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"device_check: {len(rows)} measurements in {elapsed:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
