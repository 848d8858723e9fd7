"""Trained models on disk, in segmentation-models-pytorch's own format, and the one safe way to load them.

A model folder (``models/<id>/``, or a hub export written by ``python -m pipeline.publish --hub``) holds

    config.json          smp's init parameters: ``smp.from_pretrained(folder)`` reads it
    model.safetensors    the weights: plain tensors, no code runs when they are read
    preprocessing.json   what the model expects: its experiment and input convention, working size, HU scaling

and, in ``models/<id>/``, the training records ``train.json`` and ``history.csv``. Nothing is a pickle.

``load`` is the only loader of trained models in the project (predict, evaluate, figures, the Python API). It
never unpickles: a ``.pt`` file, the format of this project's first releases and of most PyTorch code, can
run any code it carries when ``torch.load`` opens it, so it is refused with a line that says how to convert a
trusted one (``python -m pipeline.convert``, which reads it with ``weights_only=True``).
"""

import hashlib
import json
import math
from pathlib import Path

import torch

from pipeline.cells import Cell
from pipeline.dataset import EXPERIMENTS
from pipeline.errors import DataError, PipelineError
from pipeline.outputs import read_json

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PREPROCESSING = "preprocessing.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")
# What each experiment feeds the network (PROTOCOL.md); written into every model's preprocessing.json.
INPUTS = {
    "lung": "the CT slice",
    "lesion_a": "the CT slice",
    "lesion_b": "the CT slice multiplied by the binary lung mask (0 outside the lungs, after normalisation)",
}
TARGETS = {"lung": "both lungs", "lesion_a": "COVID-19 lesions", "lesion_b": "COVID-19 lesions inside the lungs"}


def preprocessing_record(experiment: str, preprocess: dict) -> dict:
    """What a model of ``experiment`` trained on data prepared with ``preprocess`` expects of a scan."""
    return {
        "experiment": experiment,
        "input": INPUTS[experiment],
        "target": TARGETS[experiment],
        "size": int(preprocess["size"]),
        "hu_offset": float(preprocess["hu_offset"]),
        "hu_scale": float(preprocess["hu_scale"]),
        "normalisation": "(HU + hu_offset) / hu_scale, then each slice resized to size x size (antialiased bilinear)",
        "slices": "the last array axis of the NIfTI volume, as nibabel returns it, with no reorientation",
        "output": "one logit per pixel: sigmoid, resize back to the slice's size, threshold (0.5 in the benchmark)",
    }


def file_digests(path: Path) -> dict:
    """Size, sha256 (what people check a download against) and md5 (DVC's content address) of a file."""
    sha256, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            sha256.update(block)
            md5.update(block)
            size += len(block)
    return {"file": Path(path).name, "bytes": size, "sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def save(state_dict: dict, cell: Cell, preprocess: dict, folder: Path) -> dict:
    """Write a trained model's folder (smp's ``save_pretrained`` plus preprocessing.json); returns the
    checkpoint record (file, bytes, sha256, md5) for train.json."""
    import segmentation_models_pytorch as smp

    # A fresh 1-channel model, so that config.json says what the weights are (an ImageNet model was built
    # with 3 input channels and reduced to 1) and names no pretrained weights to fetch.
    model = smp.create_model(
        cell.architecture, encoder_name=cell.encoder, encoder_weights=None, in_channels=1, classes=1
    )
    model.load_state_dict(state_dict)
    folder = Path(folder)
    model.save_pretrained(folder)
    (folder / WEIGHTS).chmod(0o644)  # written private by the hub client; it is meant to be published
    # smp also writes a generic model card; ours, with the test metrics, is made by `publish --hub`.
    (folder / "README.md").unlink(missing_ok=True)
    record = preprocessing_record(cell.experiment, preprocess)
    (folder / PREPROCESSING).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return file_digests(folder / WEIGHTS)


def pickle_refusal(path: Path) -> PipelineError:
    suggestion = Path(path).with_suffix("") if Path(path).suffix else Path(f"{path}-converted")
    return PipelineError(
        f"{path}: a pickled PyTorch checkpoint; loading one runs whatever code it carries, so this project "
        f"loads only model folders (config.json + model.safetensors). If you trust where it came from, "
        f"convert it: python -m pipeline.convert {path} {suggestion}"
    )


def _looks_pickled(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    # A pickle starts with the PROTO opcode; torch.save's zip container with "PK".
    return head[:1] == b"\x80" or head[:2] == b"PK"


def resolve(model: str | Path, models_dir: Path) -> Path:
    """A model id, a model folder or a file in one -> the folder; a pickle is refused, never opened."""
    from pipeline.cells import parse_cell_id

    path = Path(model)
    if path.is_dir():
        folder = path
    elif path.is_file():
        if path.name in (WEIGHTS, CONFIG, PREPROCESSING):
            folder = path.parent
        elif path.suffix in PICKLE_SUFFIXES or _looks_pickled(path):
            raise pickle_refusal(path)
        else:
            raise PipelineError(f"{path}: not a model; give a model id or a model folder (config.json + {WEIGHTS})")
    elif "/" in str(model) or path.suffix in PICKLE_SUFFIXES:
        raise PipelineError(f"{path}: no such model folder")
    else:
        try:
            cell = parse_cell_id(str(model))
        except ValueError as error:
            raise PipelineError(f"--model: {error}") from None
        folder = models_dir / cell.id
        if not (folder / WEIGHTS).exists() and not (folder / "model.pt").exists():
            raise PipelineError(f"{folder}: not here; fetch it with `dvc pull train@{cell.id}` (or train it)")
    if not (folder / WEIGHTS).exists():
        pickled = sorted(p for p in folder.glob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise pickle_refusal(pickled[0])
        raise PipelineError(f"{folder}: not a model folder (no {WEIGHTS})")
    return folder


NOT_A_MODEL = "not a model folder of this benchmark"


def read_preprocessing(folder: Path) -> dict:
    path = Path(folder) / PREPROCESSING
    record = read_json(path, NOT_A_MODEL)
    experiment = record.get("experiment")
    if experiment not in EXPERIMENTS:
        raise DataError(path, f"names the experiment {experiment!r}; valid: {', '.join(EXPERIMENTS)}")
    size, offset, scale = record.get("size"), record.get("hu_offset"), record.get("hu_scale")
    if not (isinstance(size, int) and size > 0 and size % 32 == 0):
        raise DataError(path, f"has size {size!r}; expected a positive multiple of 32")
    for name, value in (("hu_offset", offset), ("hu_scale", scale)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise DataError(path, f"has {name} {value!r}; expected a finite number")
    if scale <= 0:
        raise DataError(path, f"has hu_scale {scale!r}; expected a positive number")
    return record


def build_from_config(folder: Path) -> torch.nn.Module:
    """The network config.json describes, with no weights (never fetched: encoder_weights is forced off)."""
    import segmentation_models_pytorch as smp

    path = Path(folder) / CONFIG
    config = read_json(path, NOT_A_MODEL)
    classes = {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}
    name = config.get("_model_class")
    if name not in classes:
        raise DataError(path, f"names the model class {name!r}; valid: {', '.join(sorted(classes))}")
    kwargs = {key: value for key, value in config.items() if not key.startswith("_")}
    if kwargs.get("in_channels", 3) != 1 or kwargs.get("classes", 1) != 1:
        raise DataError(path, "describes a model without 1 input channel and 1 class; this benchmark's take a CT slice")
    kwargs["encoder_weights"] = None
    try:
        return classes[name](**kwargs)
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        raise DataError(path, f"does not describe a buildable {name} ({str(error).splitlines()[0]})") from None


def load(folder: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """A trained model (eval mode, on ``device``) and its preprocessing record, from a model folder."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    folder = Path(folder)
    preprocessing = read_preprocessing(folder)
    model = build_from_config(folder)
    path = folder / WEIGHTS
    try:
        # load_model, not load_file: it knows the tensors save_pretrained stored once for two names.
        missing, unexpected = load_model(model, path, strict=False, device="cpu")
    except FileNotFoundError:
        raise DataError(path, "is missing") from None
    except RuntimeError as error:  # a tensor of the wrong shape
        detail = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error))
        raise DataError(path, f"does not match the model of {CONFIG}: {detail[:200]}") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise DataError(path, f"is not a readable safetensors file ({str(error).splitlines()[0]})") from None
    if missing or unexpected:
        problem = (f"lacks {len(missing)} tensors (e.g. {sorted(missing)[0]})" if missing else
                   f"has {len(unexpected)} unknown tensors (e.g. {sorted(unexpected)[0]})")  # fmt: skip
        raise DataError(path, f"does not match the model of {CONFIG}: it {problem}")
    return model.to(device).eval(), preprocessing
