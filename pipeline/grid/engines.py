"""Engines that run the grid's training cells: one at a time here (serial), or as Ray tasks on a cluster.

Both take (stage name, command, inputs key) triples and yield an ``Outcome`` per cell as cells finish, so the runner
(pipeline.grid) records, reports and counts them the same way. Ray is imported only by the Ray engine: it
is an optional extra (``pip install -e '.[ray]'``).

The Ray engine runs each cell as one Ray task that runs the cell's stage command in the project root, which
every node must see at the same path (a shared file system on SLURM, a volume on Kubernetes). A task gets
``1/K`` of a GPU with ``--models-per-gpu K`` (Ray sets CUDA_VISIBLE_DEVICES for it), or ``--cpus-per-model``
CPUs on machines without GPUs. A task whose worker dies, or whose training process is killed, is retried up
to ``--retries`` times; the retry resumes from the cell's last finished epoch.
"""

import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.core.errors import PipelineError
from pipeline.grid.cellrun import LOG_DIR, CellInterrupted, Outcome, run_cell, task_label

# Models packed on one GPU by default. Not yet measured on a GPU (benchmarks/gpu_packing.py measures it);
# until it is, one model per GPU is the choice that cannot be slower than the serial engine.
DEFAULT_MODELS_PER_GPU = 1
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # only small results cross it


def _log_of(root: str, name: str) -> str:
    return str(Path(root) / LOG_DIR / f"{task_label(name)}.log")


class SerialEngine:
    """One cell after the other in this process's machine; no dependency, the default."""

    name = "serial"
    slots = 1

    def __init__(self, root: Path):
        self.root = str(Path(root).resolve())

    def run(self, cells: list[tuple[str, str, str]]) -> Iterator[Outcome]:
        for name, command, key in cells:
            try:
                yield run_cell(name, command, self.root, inputs_key=key)
            except CellInterrupted as error:
                yield Outcome(name, "failed", 0.0, _log_of(self.root, name), error=str(error))

    def close(self) -> None:
        pass


class RayEngine:
    """Cells as Ray tasks on an existing cluster (``address``) or on a local one started here."""

    name = "ray"

    def __init__(
        self,
        root: Path,
        address: str | None = None,
        models_per_gpu: int = DEFAULT_MODELS_PER_GPU,
        cpus_per_model: int = 1,
        retries: int = 2,
        local_cpus: int | None = None,
    ):
        try:
            import ray
        except ImportError:
            raise PipelineError("the Ray engine needs Ray: pip install -e '.[ray]'") from None
        if models_per_gpu < 1 or cpus_per_model < 1 or retries < 0:
            raise PipelineError("--models-per-gpu and --cpus-per-model must be at least 1, --retries not negative")
        self.ray = ray
        self.root = str(Path(root).resolve())
        address = address or os.environ.get("RAY_ADDRESS")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no telemetry from a benchmark run
        if address:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        else:
            # A private cluster for this run: explicit CPU count, a small object store, addressed on loopback
            # (Ray still listens on all interfaces; its default token authentication guards the ports).
            ray.init(
                num_cpus=local_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES, _node_ip_address="127.0.0.1", logging_level="WARNING",
            )  # fmt: skip
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        if self.gpus:
            self.options = {"num_gpus": 1 / models_per_gpu, "num_cpus": 1}
            self.slots = self.gpus * models_per_gpu
            self.threads = None
        else:
            cpus = int(resources.get("CPU", 1))
            if cpus_per_model > cpus:
                raise PipelineError(f"--cpus-per-model {cpus_per_model} is more than the cluster's {cpus} CPUs")
            self.options = {"num_gpus": 0, "num_cpus": cpus_per_model}
            self.slots = max(1, cpus // cpus_per_model)
            self.threads = cpus_per_model
        self.task = ray.remote(run_cell).options(
            max_retries=retries, retry_exceptions=[CellInterrupted], **self.options
        )

    def describe(self) -> str:
        if self.gpus:
            return f"{self.gpus} GPU(s) x {self.slots // self.gpus} models per GPU = {self.slots} slots"
        return f"{self.slots} slots of {self.threads} CPU(s) (no GPU in the cluster)"

    def run(self, cells: list[tuple[str, str, str]]) -> Iterator[Outcome]:
        pending = {self.task.remote(name, command, self.root, self.threads, key): name for name, command, key in cells}
        while pending:
            done, _ = self.ray.wait(list(pending), num_returns=1)
            name = pending.pop(done[0])
            try:
                yield self.ray.get(done[0])
            except self.ray.exceptions.RayError as error:  # retries exhausted, or the task could not run
                yield Outcome(name, "failed", 0.0, _log_of(self.root, name), error=str(error).splitlines()[0])

    def close(self) -> None:
        self.ray.shutdown()
