"""The prepared arrays that training and evaluation read.

data/prepared/ (written by ``python -m pipeline.data.preprocess``):

    train/ val/ test/       image.npy (N, S, S) float32 normalised; lung.npy, lesion.npy (N, S, S) uint8 0/1
    test/slices.csv         volume, slice: where each working-size test slice comes from
    native/<volume>/        the test volume in its own geometry, slices first: image.npy (HU), lung.npy,
                            lesion.npy (binary), for evaluation exactly as ``predict`` sees a scan
    meta.json               profile, data source, sizes, split and volume list

Arrays are memory-mapped, so opening a split costs milliseconds whatever its size.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.experiments import experiment
from pipeline.core.outputs import read_json, require_keys
from pipeline.core.paths import PREPARED_DIR

SPLITS = ("train", "val", "test")
ARRAYS = ("image", "lung", "lesion")


@dataclass(frozen=True)
class Split:
    image: np.ndarray  # (N, S, S) float32, normalised
    lung: np.ndarray  # (N, S, S) uint8, 0/1
    lesion: np.ndarray  # (N, S, S) uint8, 0/1

    def __len__(self) -> int:
        return self.image.shape[0]


def save_split(directory: Path, image: np.ndarray, lung: np.ndarray, lesion: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in zip(ARRAYS, (image, lung, lesion), strict=True):
        np.save(directory / f"{name}.npy", array)


def _load_arrays(directory: Path) -> list[np.ndarray]:
    arrays = []
    for name in ARRAYS:
        path = directory / f"{name}.npy"
        try:
            arrays.append(np.load(path, mmap_mode="r"))
        except FileNotFoundError:
            raise DataError(path, "is missing; run `dvc repro preprocess`") from None
        except ValueError as error:
            raise DataError(path, f"is not a readable array ({error})") from None
    return arrays


def load_split(name: str, prepared_dir: Path = PREPARED_DIR) -> Split:
    """A split of the working-size data: train, val or test."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
    return Split(*_load_arrays(Path(prepared_dir) / name))


def load_native(volume: str, prepared_dir: Path = PREPARED_DIR) -> Split:
    """A test volume in its native geometry; ``image`` holds Hounsfield units, not normalised values."""
    return Split(*_load_arrays(Path(prepared_dir) / "native" / volume))


def load_meta(prepared_dir: Path = PREPARED_DIR) -> dict:
    """meta.json of the prepared data, checked for what the later stages read."""
    path, remedy = Path(prepared_dir) / "meta.json", "rerun `dvc repro preprocess`"
    meta = require_keys(read_json(path, remedy), ("profile", "data_source", "preprocess", "splits", "volumes"),
                        path, remedy)  # fmt: skip
    if not isinstance(meta["preprocess"], dict) or not isinstance(meta["splits"], dict):
        raise DataError(path, f"has a malformed 'preprocess' or 'splits'; {remedy}")
    require_keys(meta["preprocess"], ("size", "hu_offset", "hu_scale"), path, f"(in 'preprocess') {remedy}")
    require_keys(meta["splits"], SPLITS, path, f"(in 'splits') {remedy}")
    volumes = meta["volumes"]
    if not isinstance(volumes, list) or not all(isinstance(volume, dict) for volume in volumes):
        raise DataError(path, f"'volumes' is not a list of records; {remedy}")
    for volume in volumes:
        require_keys(volume, ("name", "dir", "shape", "spacing_mm", "affine"), path, f"(in 'volumes') {remedy}")
        if not isinstance(volume["dir"], str) or Path(volume["dir"]).name != volume["dir"] or volume["dir"] in (
            "", ".", ".."):  # fmt: skip
            raise DataError(path, f"names the volume folder {volume['dir']!r}, which is not a plain folder name")
        shape, spacing = volume["shape"], volume["spacing_mm"]
        if not (isinstance(shape, list) and len(shape) == 3 and all(type(n) is int and n > 0 for n in shape)):
            raise DataError(path, f"gives volume {volume['dir']} the shape {shape!r}; expected 3 positive integers")
        if not (isinstance(spacing, list) and len(spacing) == 3 and all(
                type(s) in (int, float) and math.isfinite(s) and s > 0 for s in spacing)):  # fmt: skip
            raise DataError(path, f"gives volume {volume['dir']} the spacing {spacing!r}; expected 3 positive "
                                  "millimetres")  # fmt: skip
        affine = volume["affine"]
        if not (isinstance(affine, list) and len(affine) == 4 and all(
                isinstance(row, list) and len(row) == 4 and all(
                    type(v) in (int, float) and math.isfinite(v) for v in row) for row in affine)):  # fmt: skip
            raise DataError(path, f"gives volume {volume['dir']} a malformed affine; expected 4 x 4 finite numbers")
    return meta


def experiment_arrays(split: Split, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of an experiment on a prepared split, as float32 and uint8 arrays."""
    image, lung, lesion = np.asarray(split.image), np.asarray(split.lung), np.asarray(split.lesion)
    chosen = experiment(name)
    inputs = chosen.inputs(image, lung.astype(np.float32))
    return inputs.astype(np.float32, copy=False), chosen.targets(lung, lesion)


def native_target(volume: Split, name: str) -> np.ndarray:
    """A native test volume's ground truth for an experiment, as a boolean array."""
    return np.asarray(experiment(name).targets(volume.lung, volume.lesion)).astype(bool)
