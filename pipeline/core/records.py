"""The records one stage writes and later ones read, each read through one checking reader per kind of file.

A record can be edited by hand or arrive in a pull request, so every reader checks what its readers rely
on: the keys or columns, their types (a number is a number, never the string "0.99"), that numbers are
finite and within their range, and the rows that must all be there (every test volume). A problem is one
DataError naming the file, the field and the value, and saying what to run; never a traceback in the middle
of a stage or a page.
"""

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.core.errors import DataError
from pipeline.core.experiments import NAMES as EXPERIMENTS
from pipeline.core.outputs import read_json, read_table

Check = Callable[[Any], str]  # "" when the value is acceptable, else what is wrong with it


def text(value) -> str:
    return "" if isinstance(value, str) else "expected text"


def one_of(*choices: str) -> Check:
    return lambda value: "" if value in choices else f"expected one of {', '.join(choices)}"


def integer(low: float = -math.inf, high: float = math.inf, optional: bool = False) -> Check:
    def check(value) -> str:
        if value is None and optional:
            return ""
        if not isinstance(value, int) or isinstance(value, bool):
            return "expected a whole number"
        return "" if low <= value <= high else f"expected a whole number in [{low:g}, {high:g}]"

    return check


def number(low: float = -math.inf, high: float = math.inf, optional: bool = False) -> Check:
    """A finite number in [low, high]; ``optional``: or null (a score undefined on these data)."""

    def check(value) -> str:
        if value is None and optional:
            return ""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return "expected a number"
        if not math.isfinite(value):
            return "expected a finite number"
        return "" if low <= value <= high else f"expected a number in [{low:g}, {high:g}]"

    return check


def hex_digest(length: int) -> Check:
    pattern = re.compile(rf"^[0-9a-f]{{{length}}}$")
    return lambda value: "" if isinstance(value, str) and pattern.fullmatch(value) else f"expected {length} hex digits"


def mapping(schema: dict[str, Check]) -> Check:
    """A nested record: problems are reported by ``check_record`` with the inner key's name."""

    def check(value) -> str:
        if not isinstance(value, dict):
            return "expected a mapping of keys to values"
        for key, inner in schema.items():
            if key not in value:
                return f"lacks the key '{key}'"
            if problem := inner(value[key]):
                return f"its '{key}' is {_shown(value[key])}: {problem}"
        return ""

    return check


def listing(item: Check, length: int | None = None) -> Check:
    def check(value) -> str:
        if not isinstance(value, list) or (length is not None and len(value) != length):
            return f"expected a list of {length} values" if length else "expected a list"
        return next((f"an entry is {_shown(v)}: {problem}" for v in value if (problem := item(v))), "")

    return check


def _shown(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def check_record(record: dict, schema: dict[str, Check], path: Path, remedy: str) -> dict:
    """``record`` (read from ``path``), with every key of ``schema`` present and acceptable."""
    for key, check in schema.items():
        if key not in record:
            raise DataError(path, f"lacks the key '{key}'; {remedy}")
        if problem := check(record[key]):
            raise DataError(path, f"'{key}' is {_shown(record[key])}: {problem}; {remedy}")
    return record


def _cell(value):
    """A CSV cell as the value it spells: None when empty, a number when it reads as one (a column with one bad
    cell comes back as text throughout), else the text."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def check_columns(frame, schema: dict[str, Check], path: Path, remedy: str):
    """Every cell of the ``schema`` columns of a table (pandas) acceptable; an empty cell is None."""
    for column, check in schema.items():
        for line, raw in enumerate(frame[column].tolist(), start=2):
            value = raw if check is text else _cell(raw)
            if isinstance(value, float) and value.is_integer() and check(value) and not check(int(value)):
                value = int(value)  # a whole number a CSV reader read as float (a column with empty cells)
            if problem := check(value):
                raise DataError(path, f"row {line}, column '{column}' is {_shown(value)}: {problem}; {remedy}")
    return frame


RETRAIN = "retrain it (`dvc repro -f -s train@<id>`)"
SCORE = number(0.0, 1.0)
OPTIONAL_SCORE = number(0.0, 1.0, optional=True)
DISTANCE = number(0.0)
TRAIN = {
    "id": text, "model_id": text, "experiment": one_of(*EXPERIMENTS), "architecture": text, "encoder": text,
    "encoder_weights": one_of("random", "imagenet"), "data_source": text, "profile": text,
    "status": one_of("ok", "failed"), "error": text, "epochs": integer(1), "params": integer(1), "device": text,
    "seed": integer(0),
}  # fmt: skip
TRAINED = {
    "checkpoint": mapping({"sha256": hex_digest(64), "md5": hex_digest(32), "bytes": integer(1)}),
    "best_epoch": integer(1), "best_val_loss": number(), "null_val_loss": number(),
}  # fmt: skip


def read_train_record(model_dir: Path) -> dict:
    """A run's train.json, checked for what the later stages read."""
    path, remedy = Path(model_dir) / "train.json", "train this model first (`dvc repro train`)"
    record = check_record(read_json(path, remedy), TRAIN, path, RETRAIN)
    if record["status"] == "ok":
        check_record(record, TRAINED, path, RETRAIN)
        if record["best_epoch"] > record["epochs"]:
            raise DataError(path, f"'best_epoch' is {record['best_epoch']}, after the last epoch; {RETRAIN}")
    return record


EVALUATE = "evaluate the models again (`dvc repro -f evaluate`)"
EVALUATED = {
    "dice": SCORE, "nsd": SCORE, "hd95": DISTANCE, "sensitivity": OPTIONAL_SCORE, "specificity": OPTIONAL_SCORE,
    "precision": OPTIONAL_SCORE, "dice_ci_low": SCORE, "dice_ci_high": SCORE, "nsd_ci_low": SCORE,
    "nsd_ci_high": SCORE, "hd95_ci_low": DISTANCE, "hd95_ci_high": DISTANCE, "precision_volumes": integer(0),
    "slice_dice": OPTIONAL_SCORE, "pooled_dice": SCORE, "paper_sensitivity": number(0, 100),
    "paper_specificity": number(0, 100), "paper_dice": number(0, 100), "test_volumes": listing(text),
}  # fmt: skip
VOLUMES = {
    "volume": text, "slices": integer(1), "dice": SCORE, "sensitivity": OPTIONAL_SCORE,
    "specificity": OPTIONAL_SCORE, "precision": OPTIONAL_SCORE, "nsd": SCORE, "hd95": DISTANCE,
    "predicted_voxels": integer(0), "target_voxels": integer(0),
}  # fmt: skip


def read_volume_table(path: Path, volumes: list[str], remedy: str = EVALUATE):
    """A per-volume table (evaluation/<run>/volumes.csv, results/<id>/volumes.csv): one row for each of
    ``volumes``, no other, every score of the right type and range."""
    frame = check_columns(read_table(path, tuple(VOLUMES), remedy), VOLUMES, path, remedy)
    found = [str(name) for name in frame["volume"]]
    if sorted(found) != sorted(volumes):
        missing = sorted(set(volumes) - set(found))
        problem = (f"lacks the test volume {missing[0]}" if missing else
                   f"has {len(found)} rows for the {len(volumes)} test volumes")  # fmt: skip
        raise DataError(path, f"{problem} ({len(found)} of {len(volumes)} rows); {remedy}")
    return frame


def read_evaluation(folder: Path) -> tuple[dict, Any]:
    """A run's evaluation (metrics.json and volumes.csv), checked: (metrics, per-volume table or None)."""
    path = Path(folder) / "metrics.json"
    record = check_record(read_json(path, EVALUATE), {"id": text, "status": one_of("ok", "failed")}, path, EVALUATE)
    if record["status"] != "ok":
        return record, None
    check_record(record, EVALUATED, path, EVALUATE)
    return record, read_volume_table(Path(folder) / "volumes.csv", record["test_volumes"])


HISTORY = {"epoch": integer(1), "train_loss": number(), "val_loss": number()}


def read_history(path: Path, remedy: str = RETRAIN):
    """A run's loss per epoch (history.csv): epochs 1, 2, ... with finite losses."""
    frame = check_columns(read_table(path, tuple(HISTORY), remedy), HISTORY, path, remedy)
    if frame["epoch"].tolist() != list(range(1, len(frame) + 1)):
        raise DataError(path, f"its epochs are not 1, 2, ..., {len(frame)}; {remedy}")
    return frame


SPEED = {"infer_images_per_s": number(0.0), "train_images_per_s": number(0.0)}


def read_speed(path: Path) -> dict:
    """speed.json (the speed stage's timings), or {} when it has not run."""
    if not Path(path).exists():
        return {}
    remedy = "rerun it (`dvc repro -f speed`)"
    record = check_record(read_json(path, remedy), {"device": text, "method": text, "networks": mapping({})}, path,
                          remedy)  # fmt: skip
    for name, timing in record["networks"].items():
        if problem := mapping(SPEED)(timing):
            raise DataError(path, f"'networks' entry {name!r}: {problem}; {remedy}")
    return record
