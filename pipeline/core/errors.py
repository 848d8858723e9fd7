"""The one error type users see, and the wrapper that turns it into one line and a non-zero exit.

Bad input (a malformed params.yaml, an HTML page saved as NIfTI, a truncated download) raises
``PipelineError`` with a message that names the file and the problem. A disk or permission problem (a
read-only or full disk, a file-size limit, a file another process holds) is reported the same way, naming the
path and what the system said. Everything else is a bug and keeps its traceback.
"""

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

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


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; report input and disk problems as one ``error:`` line and exit non-zero."""
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
