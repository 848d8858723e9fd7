"""Stage outputs: written so that a failed or killed run never loses the previous ones, read back with one
clear error when they are missing or broken.

A stage writes into a hidden sibling directory (``.name.tmp-PID``); only when it has finished is the old
output renamed to a backup (``.name.old-PID``), the new one renamed into place, and the backup removed. So
there is always one complete copy of the last good output on disk: a run killed between the two renames
leaves it under the backup name, and the next run (of any stage writing that output) puts it back before
doing anything else. Leftover staging folders are incomplete by construction and are removed.

One run at a time per output: a run holds an exclusive lock (``flock``) on ``.name.lock`` beside the output
from before it recovers anything until its output is in place, so a second run of the same stage waits for
the first (and says so) instead of removing its live staging folder; the lock goes with the process, however
it ends. A disk or permission error while writing removes the staging folder and names the output.
"""

import fcntl
import json
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.core.errors import DataError, PipelineError

LOCK_WAIT_S = float(os.environ.get("PIPELINE_LOCK_WAIT_S", 3600))  # how long a second run waits for the first


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


def _swap_in(staging: Path, target: Path, then: Callable[[Path], None] | None = None) -> None:
    """Replace ``target`` by ``staging``; at every moment one of them, complete, is on disk. ``then`` runs on the
    new output before the old one is let go: if it fails (or is interrupted), the old output comes back."""
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(retired)
    try:
        staging.rename(target)
    except OSError:
        if retired.exists() and not target.exists():
            retired.rename(target)  # the old output back in place; the caller removes the staging folder
        raise
    if then is not None:
        try:
            then(target)
        except BaseException:  # a refusal, a full disk, Ctrl-C: the new output goes, the old one comes back
            shutil.rmtree(target, ignore_errors=True)
            if retired.exists():
                retired.rename(target)
            raise
    shutil.rmtree(retired, ignore_errors=True)


def lock_path(target: Path) -> Path:
    return Path(target).parent / f".{Path(target).name}.lock"


@contextmanager
def exclusive(target: Path, wait_s: float | None = None) -> Iterator[None]:
    """Hold the lock of ``target`` for the block; wait (saying so once) while another run holds it, and after
    ``wait_s`` seconds give up with one line naming that run."""
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline, told = time.monotonic() + wait_s, False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                if time.monotonic() >= deadline:
                    raise PipelineError(
                        f"{target}: another run ({holder}) is writing it; try again when it ends"
                    ) from None
                if not told:
                    print(f"waiting: another run ({holder}) is writing {target}", file=sys.stderr)
                    told = True
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield  # the lock is released when the file closes, or when the process dies


@contextmanager
def replace_directory(target: Path, wait_s: float | None = None, check: Callable[[Path], None] | None = None,
                      then: Callable[[Path], None] | None = None) -> Iterator[Path]:  # fmt: skip
    """Yield an empty staging directory that replaces ``target`` when the block ends without error, holding
    ``target``'s lock throughout. ``check`` runs under the lock before anything is written (a decision two
    runs must not both make, such as whether a name is free); ``then`` runs on the new output once it is in
    place, and the old one comes back if it fails (pipeline.submit adds the payload to DVC there)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target, wait_s):
        recover(target)
        if check is not None:
            check(target)
        staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
            yield staging
            _swap_in(staging, target, then)
        except OSError as error:
            if error.filename is None:  # a failed write() names no file: name the output being written
                error.filename = str(target)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


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


def read_previous(path: Path) -> dict:
    """The JSON record a persistent output kept from its previous run, to reuse what is still current; an
    empty one when it is missing, unreadable, not a regular file or not a mapping (then everything is computed
    again)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return {}
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def read_json(path: Path, remedy: str) -> dict:
    """A JSON record another stage wrote; ``remedy`` says what to run when it is missing."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end: never opened
            raise DataError(path, "is not a regular file (a pipe, device or socket?); expected a JSON file")
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(path, f"is missing; {remedy}") from None
    except IsADirectoryError:
        raise DataError(path, "is a folder, not a JSON file") from None
    except PermissionError:
        raise DataError(path, "cannot be read (permission denied)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(path, "is not valid JSON") from None
    except RecursionError:
        raise DataError(path, "is nested too deeply to be a record of this project") from None
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
