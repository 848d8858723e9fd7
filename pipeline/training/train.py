"""Stage ``train@<id>``: train one model of the grid per PROTOCOL.md and keep its best-validation checkpoint.

    python -m pipeline.training.train lung-unet-resnet18-random            (as dvc.yaml runs each train@<id>)
    python -m pipeline.training.train lung-unet-resnet18-random --seed 1   (a repeat, repeat@<id>-1)

Reads params `profile`, `train` and data/prepared/. Writes models/<run id>/ (the run id is the model's id,
or ``<id>~seed<k>`` for a repeat): the model of the epoch with the strictly lowest mean validation loss in
segmentation-models-pytorch's own format (``config.json``, ``model.safetensors``, ``preprocessing.json``:
pipeline.model.checkpoints), ``train.json`` (status, parameter counts, FLOPs, throughput during training, device
and software, the checkpoint's size and hashes) and ``history.csv`` (losses and wall time per epoch).

Fast by construction: the training set lives on the device as tensors, augmentation runs there in batches,
no DataLoader; fused Adam; on CUDA bf16 autocast (the loss in fp32), channels_last and cudnn.benchmark; no host
synchronisation inside an epoch. A killed run resumes from its last finished epoch, exactly (state kept
in .cache/train-state/, keyed by everything the result depends on: pipeline.training.state). A non-finite loss
or running out of memory ends the cell with ``status: failed`` and the error in train.json: a row on the
leaderboard, not a crashed grid.
"""

import csv
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.core.cells import Cell, Run, parse_cell_id
from pipeline.core.config import Params, TrainParams, load_params
from pipeline.core.errors import ArgumentParser, PipelineError, run_stage
from pipeline.core.experiments import experiment
from pipeline.core.outputs import replace_directory
from pipeline.core.paths import IMAGENET_DIR, MODELS_DIR, PARAMS_FILE, PREPARED_DIR, STATE_DIR
from pipeline.data.prepared import load_meta, load_split
from pipeline.model import checkpoints
from pipeline.model import factory as models
from pipeline.model.device import device_name, select_device, software, synchronise
from pipeline.training import losses, step
from pipeline.training.augment import augment, pad_value
from pipeline.training.inputs import describe, inputs_key
from pipeline.training.state import Progress, load_state, readable, save_state

HISTORY_FIELDS = ("epoch", "train_loss", "val_loss", "train_seconds", "val_seconds")


class TrainingFailed(Exception):
    """The model cannot be trained to the end (non-finite loss, out of memory): recorded, not raised."""


def cell_seed(base_seed: int, cell_id: str) -> int:
    """A seed from the model's identity alone, so a model never depends on what ran before it."""
    return int.from_bytes(hashlib.sha256(f"{base_seed}:{cell_id}".encode()).digest()[:4], "little")


def stack_split(name: str, prepared_dir: Path, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, S, S), masks (N, 2, S, S): lung, lesion) of a split, on the device."""
    split = load_split(name, prepared_dir)
    image = torch.from_numpy(np.array(split.image[:, None], dtype=np.float32)).to(device)
    masks = torch.from_numpy(np.stack([split.lung, split.lesion], axis=1).astype(np.float32)).to(device)
    return image, masks


def batch_for(name: str, image: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of an experiment from images and their (lung, lesion) masks."""
    chosen = experiment(name)
    lung, lesion = masks[:, 0:1], masks[:, 1:2]
    return chosen.inputs(image, lung), chosen.targets(lung, lesion)


@dataclasses.dataclass
class Setup:
    """Everything one training run needs, resolved once."""

    cell: Cell
    params: TrainParams
    device: torch.device
    fill: float  # normalised value that fills uncovered corners in augmentation

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.contiguous(memory_format=torch.channels_last) if self.cuda else tensor


def train_epoch(setup, model, optimizer, image, masks, generator) -> torch.Tensor:
    """One pass over the training set in random order; returns the summed loss, still on the device."""
    model.train()
    order = torch.randperm(image.shape[0], generator=generator, device=image.device)
    total = torch.zeros((), device=image.device)
    for start in range(0, image.shape[0], setup.params.batch_size):
        index = order[start : start + setup.params.batch_size]
        moved, moved_masks = augment(image[index], masks[index], setup.params.augment, setup.fill, generator)
        inputs, targets = batch_for(setup.cell.experiment, moved, moved_masks)
        loss = step.training_step(model, optimizer, setup.to_device(inputs), targets, setup.params.loss,
                                    setup.autocast())  # fmt: skip
        total += loss.sum()
    return total


@torch.no_grad()
def evaluate_loss(setup, model, image, masks) -> torch.Tensor:
    """Summed validation loss (no augmentation), on the device."""
    model.eval()
    total = torch.zeros((), device=image.device)
    size = setup.params.batch_size
    for start in range(0, image.shape[0], size):
        inputs, targets = batch_for(setup.cell.experiment, image[start : start + size], masks[start : start + size])
        with setup.autocast():
            logits = model(setup.to_device(inputs))
        total += losses.per_sample_loss(setup.params.loss, logits, targets).sum()
    return total


def _state_path(run: Run, key: str, state_dir: Path) -> Path:
    return state_dir / f"{run.id}-{key}.safetensors"


def _cpu_copy(state: dict) -> dict:
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


@torch.no_grad()
def null_loss(setup: Setup, image: torch.Tensor, masks: torch.Tensor) -> float:
    """The validation loss of a model that predicts nothing: a run whose loss never gets below it did not learn
    (for the paper's loss it is 1: on an empty target the loss is 1 whatever is predicted)."""
    _, targets = batch_for(setup.cell.experiment, image, masks)
    nothing = torch.full(targets.shape, -30.0, device=targets.device)
    return float(losses.per_sample_loss(setup.params.loss, nothing, targets).mean())


def fit(setup: Setup, model, prepared_dir: Path, state_path: Path, seed: int) -> Progress:
    """Train for params.epochs epochs, resuming from state_path when a killed run left one."""
    device, params = setup.device, setup.params
    image, masks = stack_split("train", prepared_dir, device)
    val_image, val_masks = stack_split("val", prepared_dir, device)
    optimizer = step.adam(model.parameters(), params.learning_rate)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    progress = Progress(history=[])
    if state_path.exists() and not readable(state_path):
        print(f"warning: {state_path}: the saved state of an interrupted run cannot be read (cut short?); it is "
              "discarded and training starts again from epoch 0", file=sys.stderr)  # fmt: skip
        state_path.unlink()
    if state_path.exists():
        progress = load_state(state_path, model, optimizer, generator, device)
        print(f"{setup.cell}: resuming after epoch {len(progress.history)}")
    for epoch in range(len(progress.history) + 1, params.epochs + 1):
        started = time.perf_counter()
        train_sum = train_epoch(setup, model, optimizer, image, masks, generator)
        if not progress.trained_params:
            progress.trained_params = models.count_trained_parameters(model)
        synchronise(device)
        trained = time.perf_counter()
        val_sum = evaluate_loss(setup, model, val_image, val_masks)
        train_loss, val_loss = (train_sum / image.shape[0]).item(), (val_sum / val_image.shape[0]).item()
        finished = time.perf_counter()
        if not (np.isfinite(train_loss) and np.isfinite(val_loss)):
            raise TrainingFailed(f"non-finite loss at epoch {epoch} (train {train_loss}, validation {val_loss})")
        progress.history.append({
            "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
            "train_seconds": trained - started, "val_seconds": finished - trained,
        })  # fmt: skip
        if val_loss < progress.best_loss:  # strictly lower: ties keep the earlier epoch
            progress.best_epoch, progress.best_loss = epoch, val_loss
            progress.best_state = _cpu_copy(model.state_dict())
        if epoch < params.epochs:  # after the last, the run writes its model and drops the state at once
            save_state(state_path, model, optimizer, generator, progress)
    return progress


def _throughput(progress: Progress, train_images: int, val_images: int) -> tuple[float | None, float | None]:
    train_seconds = sum(row["train_seconds"] for row in progress.history)
    val_seconds = sum(row["val_seconds"] for row in progress.history)
    epochs = len(progress.history)
    return (
        train_images * epochs / train_seconds if train_seconds else None,
        val_images * epochs / val_seconds if val_seconds else None,
    )


def run(
    training: Run,
    params: Params,
    prepared_dir: Path,
    out_dir: Path,
    state_dir: Path,
    imagenet_dir: Path = IMAGENET_DIR,
) -> dict:
    """Train one run of a cell into out_dir (replaced only at the end); returns the train.json record."""
    cell = training.cell
    meta = load_meta(prepared_dir)
    device = select_device(params.train.device)
    base_seed = params.train.seed if training.seed is None else training.seed
    seed = cell_seed(base_seed, cell.id)
    torch.manual_seed(seed)  # the model's initial weights
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = models.build_model(cell.architecture, cell.encoder, cell.weights, imagenet_dir)
    size = meta["preprocess"]["size"]
    record = {
        "id": training.id, "model_id": cell.id, "experiment": cell.experiment, "architecture": cell.architecture,
        "encoder": cell.encoder, "encoder_weights": cell.weights, "profile": params.profile,
        "data_source": meta["data_source"], "status": "ok", "error": "", "base_seed": base_seed, "seed": seed,
        "loss": params.train.loss, "epochs": params.train.epochs, "size": size,
        "params": models.count_parameters(model), "gflops": models.forward_flops(model, size) / 1e9,
        "device": device_name(device), "software": software(device),
    }  # fmt: skip
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    setup = Setup(cell, params.train, device, pad_value(params.train.augment, **_normalisation(meta)))
    key = inputs_key(training, describe(params, prepared_dir, imagenet_dir))
    record["inputs"] = key
    state_path = _state_path(training, key, state_dir)
    started = time.perf_counter()
    try:
        progress = fit(setup, model, prepared_dir, state_path, seed)
    except (TrainingFailed, torch.OutOfMemoryError) as error:
        progress = None
        record.update(status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0])
    with replace_directory(out_dir) as staging:
        if progress is not None:
            train_rate, infer_rate = _throughput(progress, meta["splits"]["train"], meta["splits"]["val"])
            val_image, val_masks = stack_split("val", prepared_dir, device)
            record.update(
                best_epoch=progress.best_epoch, best_val_loss=progress.best_loss,
                null_val_loss=null_loss(setup, val_image, val_masks),
                trained_params=progress.trained_params, train_images_per_s=train_rate,
                infer_images_per_s=infer_rate, train_seconds=time.perf_counter() - started,
            )  # fmt: skip
            record["checkpoint"] = checkpoints.save(progress.best_state, cell, meta["preprocess"], staging)
            _write_history(progress.history, staging / "history.csv")
        (staging / "train.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    state_path.unlink(missing_ok=True)
    return record


def _normalisation(meta: dict) -> dict:
    return {"hu_offset": meta["preprocess"]["hu_offset"], "hu_scale": meta["preprocess"]["hu_scale"]}


def _write_history(history: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({key: f"{value:.6g}" if isinstance(value, float) else value for key, value in row.items()})


def main() -> None:
    parser = ArgumentParser(description="Train one model of the grid (or a repeat of one with --seed).")
    parser.add_argument("cell", help="the model's id, e.g. lung-unet-resnet18-random")
    parser.add_argument("--seed", type=int, help="a repeat's base seed (params repeats.seeds); default: train.seed")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--state", type=Path, default=STATE_DIR)
    args = parser.parse_args()
    params = load_params(args.params)
    try:
        training = Run(parse_cell_id(args.cell), args.seed)
    except ValueError as error:
        raise PipelineError(str(error)) from None
    models.check_names([training.cell.architecture], [training.cell.encoder], f"model id {args.cell}")
    if args.seed is not None and args.seed < 0:
        raise PipelineError(f"--seed {args.seed}: a seed must not be negative")
    record = run(training, params, args.prepared, args.models / training.id, args.state)
    if record["status"] == "ok":
        print(
            f"{training}: best epoch {record['best_epoch']}/{record['epochs']}, validation loss "
            f"{record['best_val_loss']:.4f}, {record['train_images_per_s']:.1f} train images/s on {record['device']}"
        )
    else:
        print(f"{training}: failed, recorded in {args.models / training.id / 'train.json'}: {record['error']}")


if __name__ == "__main__":
    run_stage(main)
