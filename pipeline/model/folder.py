"""What a model folder is: its files, what it expects of a scan, and how a name on the command line finds one.

A model folder (``models/<id>/``, a hub export of ``python -m pipeline.site.publish --hub``, or a submission)
holds

    config.json          smp's init parameters: ``smp.from_pretrained(folder)`` reads it
    model.safetensors    the weights: plain tensors, no code runs when they are read
    preprocessing.json   what the model expects: its experiment and input convention, working size, HU scaling

and, in ``models/<id>/``, the training records ``train.json`` and ``history.csv``. Nothing is a pickle: a
pickled ``.pt`` is refused before it is opened. This module reads no weights (pipeline.model.checkpoints
does) and imports no torch, so the site generator and publishing can use it.
"""

import hashlib
import math
from pathlib import Path

from pipeline.core.cells import parse_cell_id
from pipeline.core.config import HU_OFFSET_RANGE, HU_SCALE_RANGE, SIZE_RANGE
from pipeline.core.errors import DataError, PipelineError
from pipeline.core.experiments import EXPERIMENTS, experiment
from pipeline.core.fingerprint import file_sha256
from pipeline.core.outputs import read_json
from pipeline.data.orientation import check_codes as orientation_codes

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
PREPROCESSING = "preprocessing.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")


def preprocessing_record(name: str, preprocess: dict) -> dict:
    """What a model of experiment ``name`` trained on data prepared with ``preprocess`` expects of a scan."""
    chosen = experiment(name)
    return {
        "experiment": name,
        "input": chosen.input,
        "target": chosen.target_name,
        "size": int(preprocess["size"]),
        "hu_offset": float(preprocess["hu_offset"]),
        "hu_scale": float(preprocess["hu_scale"]),
        "normalisation": "(HU + hu_offset) / hu_scale, then each slice resized to size x size (antialiased bilinear)",
        "slices": "the last array axis of the NIfTI volume, as nibabel returns it, after the scan is brought to "
        "the orientation below",
        # axis codes of the training data (e.g. RAS): a scan is permuted and flipped to it before inference and
        # the mask back (pipeline.data.orientation); absent in folders made before it was recorded: as stored
        **({"orientation": preprocess["orientation"]} if preprocess.get("orientation") else {}),
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


def pickle_refusal(path: Path) -> PipelineError:
    suggestion = Path(path).with_suffix("") if Path(path).suffix else Path(f"{path}-converted")
    return PipelineError(
        f"{path}: a pickled PyTorch checkpoint; loading one runs whatever code it carries, so this project "
        f"loads only model folders (config.json + model.safetensors). If you trust where it came from, "
        f"convert it: python -m pipeline.model.convert {path} {suggestion}"
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
    name = record.get("experiment")
    if not isinstance(name, str) or name not in EXPERIMENTS:
        raise DataError(path, f"names the experiment {name!r}; valid: {', '.join(EXPERIMENTS)}")
    size, offset, scale = record.get("size"), record.get("hu_offset"), record.get("hu_scale")
    low, high = SIZE_RANGE
    if not (type(size) is int and low <= size <= high and size % 32 == 0):
        raise DataError(path, f"has size {size!r}; expected a multiple of 32 from {low} to {high}")
    for name, value, (low, high) in (("hu_offset", offset, HU_OFFSET_RANGE), ("hu_scale", scale, HU_SCALE_RANGE)):
        if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
            raise DataError(path, f"has {name} {value!r}; expected a number from {low:g} to {high:g}")
    if "orientation" in record and orientation_codes(record["orientation"]) is None:
        raise DataError(path, f"has orientation {record['orientation']!r}; expected three axis codes such as 'RAS'")
    return record


def verified_checkpoint(folder: Path, train: dict) -> str:
    """The sha256 of a trained run's weights, hashed from the file itself; a file that is not the one its
    train.json records (swapped, truncated, corrupted) is refused."""
    weights = Path(folder) / WEIGHTS
    if not weights.is_file():
        pickled = sorted(p for p in Path(folder).glob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise pickle_refusal(pickled[0])
        raise DataError(weights, f"is missing; fetch it (`dvc pull train@{train['model_id']}`)")
    sha256 = file_sha256(weights)
    if sha256 != train["checkpoint"]["sha256"]:
        raise DataError(weights, "is not the checkpoint its train.json describes (its sha256 differs): restore it "
                                 "(`dvc checkout`) or retrain it")  # fmt: skip
    return sha256
