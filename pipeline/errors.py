"""The one error type users see, and the wrapper that turns it into one line and a non-zero exit.

Bad input (a malformed params.yaml, an HTML page saved as NIfTI, a truncated download) raises
``PipelineError`` with a message that names the file and the problem. Everything else is a bug and keeps
its traceback.
"""

import sys
from collections.abc import Callable
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line."""


class DataError(PipelineError):
    """A data file is missing or malformed; the message starts with the file's path."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; report input problems as one ``error:`` line and exit non-zero."""
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted: earlier outputs are left as they were", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
