"""A training run's resume state: one safetensors file, never a pickle.

After every epoch but the last (after it the run writes its model at once) pipeline.training.train saves
everything the next epoch depends on, so that a killed run resumed from here ends exactly where an uninterrupted
one does: the model and Adam's moments, the progress so far (history, best epoch and its weights), and every
random state training draws from: our own generator (shuffling and augmentation), torch's global CPU and CUDA
generators (dropout, in FPN and PSPNet), numpy's and Python's. Tensors go in the file's tensors, everything else
as JSON in its metadata; the file is replaced atomically, so a kill during the save leaves the previous epoch's
state.
"""

import dataclasses
import json
import random
from pathlib import Path

import numpy as np
import torch

from pipeline.core.outputs import written_atomically


@dataclasses.dataclass
class Progress:
    """What a resumed run needs besides the model and optimizer."""

    history: list[dict]
    best_epoch: int = 0
    best_loss: float = float("inf")
    best_state: dict | None = None
    trained_params: int = 0


class _OnCpu:
    """Tensors as the state file takes them: on the CPU and contiguous, written straight from their memory (the
    save reads them before training goes on). Copied only where one shares memory with a tensor already taken:
    safetensors refuses shared tensors. Copying every tensor took about as long as the write itself."""

    def __init__(self) -> None:
        self.memory: set[int] = set()

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach().to("cpu").contiguous()
        address = tensor.untyped_storage().data_ptr()
        if address in self.memory:
            return tensor.clone()
        self.memory.add(address)
        return tensor


def save_state(path: Path, model, optimizer, generator: torch.Generator, progress: Progress) -> None:
    from safetensors.torch import save_file

    _cpu = _OnCpu()
    tensors = {f"model.{name}": _cpu(value) for name, value in model.state_dict().items()}
    for name, value in (progress.best_state or {}).items():
        tensors[f"best.{name}"] = _cpu(value)
    optimizer_state = optimizer.state_dict()
    optimizer_values: dict = {}
    for index, values in optimizer_state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = _cpu(value)
            else:
                optimizer_values.setdefault(str(index), {})[key] = value
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = state
    numpy_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(numpy_state[1].astype(np.int64))
    python_state = random.getstate()
    meta = {
        "progress": {**dataclasses.asdict(dataclasses.replace(progress, best_state=None)), "best_state": None},
        "optimizer": {"param_groups": optimizer_state["param_groups"], "values": optimizer_values},
        "numpy": [numpy_state[0], int(numpy_state[2]), int(numpy_state[3]), float(numpy_state[4])],
        "python": [python_state[0], list(python_state[1]), python_state[2]],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as partial:
        save_file(tensors, str(partial), metadata={"state": json.dumps(meta)})


def readable(path: Path) -> bool:
    """Whether a saved state can be read whole (a disk that filled up, or a copy cut short, leaves a file that
    cannot): every tensor and the metadata. Nothing is restored."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = json.loads(handle.metadata()["state"])
            names = handle.keys()  # a safetensors handle is not a mapping: its keys() is a list
            for name in names:
                handle.get_tensor(name)
        return {"progress", "optimizer", "numpy", "python"} <= set(meta)
    except Exception:  # safetensors raises its own error type, and others for a file cut mid-header
        return False


def _prefixed(tensors: dict, prefix: str) -> dict:
    return {name.removeprefix(prefix): value for name, value in tensors.items() if name.startswith(prefix)}


def load_state(path: Path, model, optimizer, generator: torch.Generator, device: torch.device) -> Progress:
    """Restore a saved state into ``model``, ``optimizer``, ``generator`` and the global generators."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt", device="cpu") as handle:
        meta = json.loads(handle.metadata()["state"])
        names = handle.keys()
        tensors = {name: handle.get_tensor(name) for name in names}
    model.load_state_dict({name: value.to(device) for name, value in _prefixed(tensors, "model.").items()})
    state: dict = {}
    for name, value in _prefixed(tensors, "optimizer.").items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["optimizer"]["values"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = _prefixed(tensors, "rng.cuda.")
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([cuda[str(index)] for index in range(len(cuda))])
    name, position, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), position, has_gauss, gauss))
    version, values, gauss_next = meta["python"]
    random.setstate((version, tuple(values), gauss_next))
    progress = Progress(**meta["progress"])
    best = _prefixed(tensors, "best.")
    progress.best_state = best or None
    return progress
