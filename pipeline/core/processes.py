"""Child processes: workers that never outlive the process that started them, and DVC's command line.

A stage that spreads work over processes (evaluation, the phantom's volumes) or runs a command (the grid
runner's cells) must not leave orphans when it is killed, even by SIGKILL, which no handler sees: an orphaned
worker goes on writing results after its stage is gone, and holds memory until someone kills it by hand.
Every such child asks the kernel to kill it when its parent dies (Linux ``PR_SET_PDEATHSIG``), and a pool
whose block ends by an error or an interrupt kills its workers at once instead of letting them finish.

DVC's command line (the grid runner, publishing, submitting) runs from the project's own environment.
"""

import contextlib
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """In a child: be killed (SIGKILL) when the parent dies; exit at once if it already has. ``parent``: the
    pid of the process that started this one, when this runs later than the child's start (a spawned worker
    runs it only after its imports, by which time an early death of the parent has already made it an orphan)."""
    parent = os.getppid() if parent is None else parent
    with contextlib.suppress(OSError, AttributeError):  # not Linux with glibc: the pool's own cleanup remains
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _start(parent: int, initializer, initargs) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(workers: int, initializer=None, initargs: tuple = (), start: str = "spawn") -> Iterator:
    """A ProcessPoolExecutor whose workers die with this process. ``start``: "spawn" for workers that use
    torch (a forked child can deadlock in it), "fork" for plain numpy work."""
    context = multiprocessing.get_context(start)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                               initargs=(os.getpid(), initializer, initargs))  # fmt: skip
    try:
        yield pool
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # no graceful wait: end them now
            with contextlib.suppress(OSError):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def dvc_command(*args: str) -> list[str]:
    """A dvc invocation from this environment, waiting for DVC's repository lock rather than failing."""
    return [str(Path(sys.executable).parent / "dvc"), "--wait-for-lock", *args]


def dvc_message(result: subprocess.CompletedProcess) -> str:
    """The cause of a failed dvc command: its ERROR line, not the support banner DVC prints after it."""
    lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    return errors[0] if errors else (lines[-1] if lines else f"exit status {result.returncode}")
