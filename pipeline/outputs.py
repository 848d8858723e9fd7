"""Stage outputs: written so that a failed or killed run never damages the previous ones, read back with
one clear error when they are missing or broken.

A stage writes into a hidden sibling directory; only when it has finished is the old directory swapped
out. A run killed half-way leaves a ``.name.tmp-PID`` sibling behind, which the next run removes.
"""

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import DataError


def _remove_leftovers(target: Path) -> None:
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in target.parent.glob(f".{target.name}.old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def replace_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``target`` when the block ends without error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def read_json(path: Path, remedy: str) -> dict:
    """A JSON record another stage wrote; ``remedy`` says what to run when it is missing."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(path, f"is missing; {remedy}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(path, "is not valid JSON") from None
