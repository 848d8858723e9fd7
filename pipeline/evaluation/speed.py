"""Stage ``speed``: a dedicated timing of every network of the grid on this machine's device.

    python -m pipeline.evaluation.speed    (as dvc.yaml runs it; reads params `grid`, `preprocess.size`,
                                        `train.batch_size`, `train.device` and `speed`)

Writes speed.json: per network (architecture and encoder; its weights do not change its speed, so the three
experiments and both initialisations share one timing) the inference throughput at ``speed.batch_size``
images and the training throughput at the protocol's batch size (forward, Dice loss, backward, Adam step),
each the median of ``speed.repeats`` timed runs after ``speed.warmup`` untimed ones, at the working size,
with the device that ran them. Throughput sampled during training stays in each model's train.json,
labelled as such: it is measured once, on whatever else the machine was doing.

Stages run one at a time under ``dvc repro``, so nothing else competes for the device while this one
times. A network whose timing is current (same network, sizes, settings, device, torch, and code: every
project module this stage imports) is reused from the previous speed.json (a persistent output), so the
stage times only what changed.
"""

import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, run_stage
from pipeline.core.fingerprint import code_fingerprint, input_key
from pipeline.core.outputs import read_previous, write_text_atomically
from pipeline.core.paths import PARAMS_FILE, SPEED_FILE
from pipeline.model.device import device_name, inference_seconds, median_seconds, select_device
from pipeline.model.factory import build_model, check_names
from pipeline.training import step


def time_network(architecture: str, encoder: str, size: int, infer_batch: int, train_batch: int,
                 device: torch.device, warmup: int, repeats: int) -> dict:  # fmt: skip
    """Images per second of one network: inference (no gradients) and one training step."""
    torch.manual_seed(0)
    model = build_model(architecture, encoder, "random").to(device)  # the grid's own factory
    cuda = device.type == "cuda"
    images = torch.randn(infer_batch, 1, size, size, device=device)
    infer_seconds = inference_seconds(model, images, device, warmup, repeats)  # channels-last from here on CUDA

    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    batch = torch.randn(train_batch, 1, size, size, device=device)
    target = (torch.rand(train_batch, 1, size, size, device=device) > 0.5).float()
    optimizer = step.adam(model.parameters(), 1e-3)

    def train_step() -> None:
        step.training_step(model, optimizer, batch, target, "dice_paper", autocast)

    model.train()
    train_seconds = median_seconds(train_step, device, warmup, repeats)
    return {
        "infer_images_per_s": infer_batch / infer_seconds,
        "train_images_per_s": train_batch / train_seconds,
        "infer_seconds_per_batch": infer_seconds,
        "train_seconds_per_step": train_seconds,
    }


def _key(settings: dict, code: str) -> str:
    return input_key({**settings, "code": code})[:16]


def previous(path: Path) -> dict:
    """The networks of an earlier speed.json, to reuse; nothing when it is missing or unreadable."""
    networks = read_previous(path).get("networks", {})
    return networks if isinstance(networks, dict) else {}


def main() -> None:
    parser = ArgumentParser(description="Time every network of the grid on this machine's device.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--out", type=Path, default=SPEED_FILE)
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_params(args.params)
    check_names(params.grid.architectures, params.grid.encoders)
    device = select_device(params.train.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = device_name(device)
    networks = list(dict.fromkeys((a, e) for a in params.grid.architectures for e in params.grid.encoders))
    old, timed, result, code = previous(args.out), 0, {}, code_fingerprint("pipeline.evaluation.speed")
    size, speed = params.preprocess.size, params.speed
    for architecture, encoder in tqdm(networks, desc="speed", unit="network"):
        settings = {"architecture": architecture, "encoder": encoder, "size": size, "infer_batch": speed.batch_size,
                    "train_batch": params.train.batch_size, "warmup": speed.warmup, "repeats": speed.repeats,
                    "device": name, "torch": torch.__version__}  # fmt: skip
        key, label = _key(settings, code), f"{architecture}-{encoder}"
        if old.get(label, {}).get("key") == key:
            result[label] = old[label]
            continue
        measured = time_network(architecture, encoder, size, speed.batch_size, params.train.batch_size,
                                device, speed.warmup, speed.repeats)  # fmt: skip
        result[label] = {**settings, **{k: round(v, 6) for k, v in measured.items()}, "key": key}
        timed += 1
    record = {
        "device": name,
        "method": f"median of {speed.repeats} timed runs after {speed.warmup} untimed ones; inference at batch "
        f"{speed.batch_size}, training step (forward, Dice loss, backward, Adam) at batch {params.train.batch_size}, "
        f"{size} x {size} pixels",
        "networks": result,
    }
    write_text_atomically(args.out, json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"speed: {timed} timed, {len(networks) - timed} reused on {name} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    run_stage(main)
