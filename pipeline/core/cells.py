"""A model's identity: (experiment, architecture, encoder, weights) <-> its id, e.g. ``lung-unet-resnet18-imagenet``.

The id names the DVC stage item (``train@<id>``), the folders ``models/<id>/`` and ``results/<id>/``, the
leaderboard's key and the model page's URL. Encoder names may contain ``-`` (``efficientnet-b0``), the other
parts never do, so an id parses unambiguously.

A *run* is one training of a model: the main run, seeded from ``train.seed``, whose id is the model's, or a
repeat with another base seed (params ``repeats``), whose id is ``<model id>~seed<k>`` (stage
``repeat@<model id>-<k>``, folder ``models/<model id>~seed<k>/``). Repeats measure training variance.
"""

import re
from dataclasses import dataclass
from itertools import product

from pipeline.core.experiments import NAMES as EXPERIMENTS

WEIGHTS = ("random", "imagenet")
# The grammar of the parts; which architectures and encoders exist is segmentation-models-pytorch's to say
# (pipeline.model.factory.check_names), checked where networks are built, so that reading an id needs no torch.
_ARCHITECTURE = re.compile(r"^[a-z0-9_]+$")
_ENCODER = re.compile(r"^[a-z0-9_][a-z0-9_.-]*$")


@dataclass(frozen=True, order=True)
class Cell:
    experiment: str
    architecture: str
    encoder: str
    weights: str

    @property
    def id(self) -> str:
        return f"{self.experiment}-{self.architecture}-{self.encoder}-{self.weights}"

    def __str__(self) -> str:
        return self.id


def parse_cell_id(cell_id: str) -> Cell:
    """The inverse of ``Cell.id``; a ValueError names what is wrong."""
    parts = cell_id.split("-")
    if len(parts) < 4:
        raise ValueError(f"'{cell_id}' is not a model id (experiment-architecture-encoder-weights)")
    cell = Cell(parts[0], parts[1], "-".join(parts[2:-1]), parts[-1])
    for value, valid, what in ((cell.experiment, EXPERIMENTS, "experiment"), (cell.weights, WEIGHTS, "weights")):
        if value not in valid:
            raise ValueError(f"'{cell_id}': unknown {what} '{value}'; valid: {', '.join(valid)}")
    for value, grammar, what in (
        (cell.architecture, _ARCHITECTURE, "architecture"),
        (cell.encoder, _ENCODER, "encoder"),
    ):
        if not grammar.fullmatch(value):
            raise ValueError(f"'{cell_id}': '{value}' is not an {what} name (lower-case letters, digits, _)")
    return cell


def grid_cells(experiments, architectures, encoders, weights) -> list[Cell]:
    """Every combination, in the order DVC's matrix expands them (experiment slowest, weights fastest)."""
    return [Cell(*combination) for combination in product(experiments, architectures, encoders, weights)]


_RUN_ID = re.compile(r"^(?P<model>[a-z0-9_.-]+?)(~seed(?P<seed>[0-9]+))?$")


@dataclass(frozen=True, order=True)
class Run:
    cell: Cell
    seed: int | None = None  # None: the main run; else the base seed of a repeat

    @property
    def id(self) -> str:
        return self.cell.id if self.seed is None else f"{self.cell.id}~seed{self.seed}"

    @property
    def stage(self) -> str:
        """The DVC stage that trains this run."""
        return f"train@{self.cell.id}" if self.seed is None else f"repeat@{self.cell.id}-{self.seed}"

    def __str__(self) -> str:
        return self.id


def parse_run_id(run_id: str) -> Run:
    """``<model id>`` or ``<model id>~seed<k>``; a ValueError names what is wrong."""
    match = _RUN_ID.fullmatch(run_id)
    if match is None:
        raise ValueError(f"'{run_id}' is not a model id (experiment-architecture-encoder-weights[~seedK])")
    seed = match.group("seed")
    return Run(parse_cell_id(match.group("model")), None if seed is None else int(seed))


def run_id_of_stage(stage: str) -> str:
    """The run id of a training stage, ``train@<id>`` -> ``<id>``, ``repeat@<id>-<k>`` -> ``<id>~seed<k>``,
    by its name alone (no validation: the grid runner's driver must not import torch)."""
    if stage.startswith("train@"):
        return stage.removeprefix("train@")
    model, _, seed = stage.removeprefix("repeat@").rpartition("-")
    if stage.startswith("repeat@") and seed.isdigit():
        return f"{model}~seed{seed}"
    raise ValueError(f"'{stage}' is not a training stage (train@<id> or repeat@<id>-<seed>)")


def run_of_stage(stage: str) -> Run:
    """The run a training stage name stands for, validated."""
    return parse_run_id(run_id_of_stage(stage))
