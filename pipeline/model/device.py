"""The device a stage runs on, how it is named in records, and what makes runs differ across machines."""

import platform
import statistics
import time

import torch

from pipeline.core.errors import PipelineError


def select_device(choice: str, source: str = "params.yaml: train.device") -> torch.device:
    """``source`` names where the choice came from, for the error when CUDA is asked for and absent."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"{source} is cuda, but no CUDA device is available (torch {torch.__version__})")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def synchronise(device: torch.device) -> None:
    """Wait for the device, so that wall-clock timings are true (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def software(device: torch.device) -> dict:
    """What makes two runs of the same cell differ across machines: versions, device, threads, determinism."""
    import segmentation_models_pytorch as smp

    return {
        "torch": torch.__version__,
        "segmentation_models_pytorch": smp.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "autocast": "bf16" if device.type == "cuda" else "off",
    }


def median_seconds(step, device: torch.device, warmup: int, repeats: int) -> float:
    """The median wall-clock seconds of ``step`` over ``repeats`` timed runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    synchronise(device)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        synchronise(device)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def inference_seconds(model: torch.nn.Module, images: torch.Tensor, device: torch.device, warmup: int,
                      repeats: int) -> float:  # fmt: skip
    """The median seconds of one batch of inference, as every network of the benchmark is timed (the speed
    stage's and a submitted model's): in eval mode, no gradients, bf16 autocast and channels-last on CUDA. The
    model is left in eval mode (and channels-last on CUDA)."""
    cuda = device.type == "cuda"
    if cuda:
        model.to(memory_format=torch.channels_last)
    model.eval()

    @torch.no_grad()
    def infer() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            model(images)

    return median_seconds(infer, device, warmup, repeats)
