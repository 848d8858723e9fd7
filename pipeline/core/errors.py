"""The one error type users see, and the wrapper that turns it into one line and a non-zero exit.

Bad input (a malformed params.yaml, an HTML page saved as NIfTI, a truncated download) raises
``PipelineError`` with a message that names the file and the problem. A disk or permission problem (a
read-only or full disk, a file-size limit, a file another process holds) is reported the same way, naming the
path and what the system said. Everything else is a bug and keeps its traceback.
"""

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# What the machine, not the code, can get wrong while a stage writes: reported in one line, never a traceback.
DISK_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.EBUSY, errno.ENOSPC, errno.EFBIG, errno.EDQUOT,
               errno.ETXTBSY, errno.EMFILE, errno.ENAMETOOLONG, errno.ELOOP}  # fmt: skip


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line."""


class DataError(PipelineError):
    """A data file is missing or malformed; the message starts with the file's path."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def one_line(text: str) -> str:
    """A message as one line: whatever it quotes (an id with a newline, a library's multi-line error) flattened."""
    return " ".join(str(text).split())


def disk_problem(error: OSError, where: Path | str | None = None) -> str:
    """``path: what the system said (ERRNO)`` for a disk or permission error."""
    path = error.filename or where or "(unknown path)"
    name = errno.errorcode.get(error.errno, str(error.errno))
    return f"{path}: {os.strerror(error.errno)} ({name})"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with its errors in the project's form: one ``error:`` line naming the command and the problem,
    exit status 2 (argparse's own prints the usage block first: 11 lines for ``submit``); ``--help`` still
    prints the usage."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prog", _command())
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {one_line(message)} (see --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _command() -> str:
    """How the running entry point is invoked: ``python -m pipeline.submit`` rather than ``submit.py``."""
    first = sys.argv[0] if sys.argv else ""
    if first.startswith("pipeline.") and not first.endswith(".py"):  # already a module name
        return f"python -m {first}"
    path = Path(first).resolve() if first else Path("")
    if "pipeline" in path.parts:
        parts = list(path.with_suffix("").parts[path.parts.index("pipeline") :])
        if parts[-1] == "__main__":
            parts.pop()
        return "python -m " + ".".join(parts)
    return path.name or "pipeline"


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Ask Linux to end this process when the process that started it dies (kill -9 of ``dvc repro`` would
    otherwise leave the stage running under PID 1, finishing work nobody waits for). Only under DVC: the signal
    follows the parent *thread*, and DVC starts stages from its main thread; elsewhere nothing changes."""
    if not sys.platform.startswith("linux") or not _parent_is_dvc():
        return
    parent_death_signal()
    if os.getppid() == 1:  # the parent died before the request was made
        os.kill(os.getpid(), 15)


def parent_death_signal() -> None:
    """SIGTERM to this process when its parent dies (Linux; elsewhere nothing): also the ``preexec_fn`` of a
    child that must not outlive the process that started it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _parent_is_dvc() -> bool:
    try:
        command = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(part.decode(errors="replace")).name in ("dvc", "dvc.exe") for part in command[:2])


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; report input and disk problems as one ``error:`` line and exit non-zero."""
    die_with_parent()
    try:
        main()
    except PipelineError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except OSError as error:
        if error.errno not in DISK_ERRORS:
            raise
        print(f"error: {one_line(disk_problem(error))}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted: earlier outputs are left as they were", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
