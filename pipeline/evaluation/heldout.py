"""The prepared test set as evaluation reads it: working-size slices for the networks, native volumes to score.

Read once for all models (evaluation, figures, submissions); ``fingerprint`` hashes everything of it that a
score depends on.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError
from pipeline.core.fingerprint import digest, input_key
from pipeline.data.prepared import Split, experiment_arrays, load_meta, load_split


@dataclass(frozen=True)
class HeldOutSet:
    """The prepared test data, read once for all models: working-size slices and where each comes from."""

    split: Split
    volume_rows: dict[str, np.ndarray]  # volume file name -> its rows in ``split``
    volume_dirs: dict[str, str]  # volume file name -> its folder under native/
    spacing: dict[str, tuple[float, float, float]]  # volume file name -> mm per axis, slices first
    prepared_dir: Path
    shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # file name -> (H, W, slices), as NIfTI
    affines: dict[str, np.ndarray] = field(default_factory=dict)  # file name -> the scan's 4 x 4 affine
    _experiments: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, prepared_dir: Path) -> "HeldOutSet":
        meta = load_meta(prepared_dir)
        path = prepared_dir / "test" / "slices.csv"
        try:
            with open(path) as handle:
                rows = list(csv.DictReader(handle))
        except FileNotFoundError:
            raise DataError(path, "is missing; rerun `dvc repro preprocess`") from None
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise DataError(path, f"is not a readable CSV ({error})") from None
        if not rows or "volume" not in rows[0]:
            raise DataError(path, "has no 'volume' column; rerun `dvc repro preprocess`")
        volumes = np.asarray([row["volume"] for row in rows])
        records = {volume["name"]: volume for volume in meta["volumes"]}
        unknown = sorted(set(volumes.tolist()) - set(records))
        if unknown:
            raise DataError(path, f"names the volume {unknown[0]}, which meta.json does not list")
        split = load_split("test", prepared_dir)
        if len(split) != len(volumes):
            raise DataError(path, f"lists {len(volumes)} slices, test/image.npy holds {len(split)}")
        return cls(
            split,
            {name: np.flatnonzero(volumes == name) for name in dict.fromkeys(volumes.tolist())},
            {name: record["dir"] for name, record in records.items()},
            {name: tuple(float(v) for v in record["spacing_mm"]) for name, record in records.items()},
            prepared_dir,
            {name: tuple(record["shape"]) for name, record in records.items()},
            {name: np.asarray(record["affine"], dtype=float) for name, record in records.items()},
        )

    def fingerprint(self) -> str:
        """A hash of everything evaluation reads of the prepared data."""
        root = self.prepared_dir
        files = [root / "meta.json", *sorted((root / "test").iterdir()), *sorted((root / "native").rglob("*.npy"))]
        return digest(path for path in files if path.is_file())

    def native_fingerprint(self) -> str:
        """A hash of the test scans as a folder of predicted masks must fit them: the native volumes (CT and
        ground truth) and each scan's name, shape and affine. The working size does not enter it."""
        root = self.prepared_dir
        geometry = {name: [list(self.shapes.get(name, ())), np.asarray(self.affines.get(name, [])).tolist()]
                    for name in self.volume_rows}  # fmt: skip
        return input_key({"volumes": geometry, "arrays": digest(sorted((root / "native").rglob("*.npy")))})

    def experiment(self, experiment: str) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of an experiment, built once for all its models (lesion B's is a full copy)."""
        if experiment not in self._experiments:
            self._experiments[experiment] = experiment_arrays(self.split, experiment)
        return self._experiments[experiment]
