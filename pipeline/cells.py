"""A model's identity: (experiment, architecture, encoder, weights) <-> its id, e.g. ``lung-unet-resnet18-imagenet``.

The id names the DVC stage item (``train@<id>``), the folders ``models/<id>/`` and ``results/<id>/``, the
leaderboard's key and the model page's URL. Encoder names may contain ``-`` (``efficientnet-b0``), the other
parts never do, so an id parses unambiguously.
"""

from dataclasses import dataclass
from itertools import product
from typing import Literal

from pipeline.dataset import EXPERIMENTS

ARCHITECTURES = ("unet", "linknet", "fpn", "pspnet")  # the paper's; any smp architecture is allowed
WEIGHTS = ("random", "imagenet")
# The paper's 25 encoders, in segmentation-models-pytorch's spelling (its "mobilenetv2" is mobilenet_v2).
ENCODERS = (
    "vgg11", "vgg13", "vgg19",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "densenet121", "densenet161", "densenet169", "densenet201",
    "resnext50_32x4d", "dpn68", "dpn98", "mobilenet_v2", "xception", "inceptionv4",
    "efficientnet-b0", "efficientnet-b1", "efficientnet-b2", "efficientnet-b3",
    "efficientnet-b4", "efficientnet-b5", "efficientnet-b6",
)  # fmt: skip

Weights = Literal["random", "imagenet"]


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
    import segmentation_models_pytorch as smp

    cell = Cell(parts[0], parts[1], "-".join(parts[2:-1]), parts[-1])
    for value, valid, what in (
        (cell.experiment, EXPERIMENTS, "experiment"),
        (cell.architecture, tuple(smp.MODEL_ARCHITECTURES_MAPPING), "architecture"),
        (cell.encoder, tuple(smp.encoders.get_encoder_names()), "encoder"),
        (cell.weights, WEIGHTS, "weights"),
    ):
        if value not in valid:
            raise ValueError(f"'{cell_id}': unknown {what} '{value}'; valid: {', '.join(valid)}")
    return cell


def grid_cells(experiments, architectures, encoders, weights) -> list[Cell]:
    """Every combination, in the order DVC's matrix expands them (experiment slowest, weights fastest)."""
    return [Cell(*combination) for combination in product(experiments, architectures, encoders, weights)]
