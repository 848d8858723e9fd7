"""Stage outputs: written so that a failed or killed run never loses the previous ones, read back with one
clear error when they are missing or broken.

A stage writes into a hidden sibling directory (``.name.tmp-PID``); only when it has finished is the old
output renamed to a backup (``.name.old-PID``), the new one renamed into place, and the backup removed. So
there is always one complete copy of the last good output on disk: a run killed between the two renames
leaves it under the backup name, and the next run (of any stage writing that output) puts it back before
doing anything else. Leftover staging folders are incomplete by construction and are removed.
"""

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import DataError


def _pid_of(leftover: Path) -> int:
    try:
        return int(leftover.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def recover(target: Path) -> None:
    """Undo what a killed run left around ``target``: a missing output comes back from its newest backup,
    backups of an output that is in place and staging folders are removed."""
    target = Path(target)
    backups = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda path: path.stat().st_mtime_ns)
    if backups and not target.exists():
        backups.pop().rename(target)  # the kill came between the two renames: the backup is the last good output
    for leftover in [*backups, *target.parent.glob(f".{target.name}.tmp-*")]:
        if _pid_of(leftover) != os.getpid():
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging``; at every moment one of them, complete, is on disk."""
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


@contextmanager
def replace_directory(target: Path) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``target`` when the block ends without error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_in(staging, target)


@contextmanager
def written_atomically(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a hidden sibling of ``path`` to write (ending in ``suffix``, for writers that choose the format by
    the name); it replaces ``path`` when the block ends without error and is removed otherwise, so a reader
    (or a kill) never sees half a file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial{suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Write a small file so that a reader (or a kill) never sees half of it."""
    with written_atomically(path) as partial:
        partial.write_text(text)


def digest(paths) -> str:
    """sha256 over file names and contents, in the order given: the fingerprint of code or data a result
    depends on."""
    hashed = hashlib.sha256()
    for path in paths:
        hashed.update(Path(path).name.encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                hashed.update(block)
    return hashed.hexdigest()


def input_key(inputs: dict) -> str:
    """The key a persistent output stores with a result: sha256 of everything the result depends on."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def read_previous(path: Path) -> dict:
    """The JSON record a persistent output kept from its previous run, to reuse what is still current; an
    empty one when it is missing, unreadable or not a mapping (then everything is computed again)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def read_json(path: Path, remedy: str) -> dict:
    """A JSON record another stage wrote; ``remedy`` says what to run when it is missing."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(path, f"is missing; {remedy}") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not a JSON file") from None
    except PermissionError:
        raise DataError(path, "cannot be read (permission denied)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(path, "is not valid JSON") from None
    if not isinstance(data, dict):
        raise DataError(path, "is not a JSON object (a mapping of keys to values)")
    return data


def read_table(path: Path, required: tuple[str, ...], remedy: str, optional: bool = False):
    """A CSV another stage wrote, as a pandas DataFrame with every column of ``required``; an empty frame for
    a missing ``optional`` one. ``remedy`` says what to run when it is missing or lacks a column."""
    import pandas as pd  # here: most stages that read records never read a table

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        if optional:
            return pd.DataFrame()
        raise DataError(path, f"is missing; {remedy}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(path, f"is not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise DataError(path, f"lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)}; {remedy}")
    return frame


def require_keys(record: dict, keys, path: Path, remedy: str) -> dict:
    """``record`` (read from ``path``) with every key of ``keys``, or one DataError naming the first missing."""
    missing = [key for key in keys if key not in record]
    if missing:
        raise DataError(path, f"lacks the key '{missing[0]}'; {remedy}")
    return record
