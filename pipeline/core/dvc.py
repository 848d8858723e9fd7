"""Running DVC's command line from the project's own environment (the grid runner, publishing)."""

import subprocess
import sys
from pathlib import Path


def dvc_command(*args: str) -> list[str]:
    """A dvc invocation from this environment, waiting for DVC's repository lock rather than failing."""
    return [str(Path(sys.executable).parent / "dvc"), "--wait-for-lock", *args]


def dvc_message(result: subprocess.CompletedProcess) -> str:
    """The cause of a failed dvc command: its ERROR line, not the support banner DVC prints after it."""
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    return errors[0] if errors else (lines[-1] if lines else f"exit status {result.returncode}")
