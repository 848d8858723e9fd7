"""The study's three experiments, in one registry (PROTOCOL.md, Preprocessing 4): what each feeds the network,
what it segments, how its boundary tolerance is chosen and how pages name it.

Every other module asks this registry (``EXPERIMENTS[name]``) instead of branching on an experiment's name.
Inputs and targets are computed by plain arithmetic, so the same functions serve numpy arrays in evaluation
and torch tensors in training.
"""

from dataclasses import dataclass
from typing import Literal

Structure = Literal["lung", "lesion"]


@dataclass(frozen=True)
class Experiment:
    name: str  # the first part of a model's id
    title: str  # how pages name it
    blurb: str  # one line: what goes in and what comes out
    input: str  # what the network sees, for model folders and cards
    target_name: str  # what it segments, in words
    target: Structure  # the mask it is scored against; also picks its NSD tolerance (evaluate.nsd_tolerance_mm_*)
    inside_lungs: bool  # the input is multiplied by the ground-truth lung mask (0 outside, after normalisation)

    def inputs(self, image, lung):
        """The network's input from a normalised image and a binary lung mask (numpy or torch alike)."""
        return image * lung if self.inside_lungs else image

    def targets(self, lung, lesion):
        """The mask this experiment is trained and scored on."""
        return lung if self.target == "lung" else lesion


EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment("lung", "Lung segmentation", "CT slice in, both lungs out.", "the CT slice", "both lungs",
                   "lung", False),
        Experiment("lesion_a", "Lesion segmentation A", "CT slice in, COVID-19 lesions out.", "the CT slice",
                   "COVID-19 lesions", "lesion", False),
        Experiment("lesion_b", "Lesion segmentation B",
                   "CT slice multiplied by the ground-truth lung mask in, lesions out.",
                   "the CT slice multiplied by the binary lung mask (0 outside the lungs, after normalisation)",
                   "COVID-19 lesions inside the lungs", "lesion", True),
    )
}  # fmt: skip
NAMES = tuple(EXPERIMENTS)


def experiment(name: str) -> Experiment:
    """The experiment of that name; a ValueError lists the valid ones."""
    try:
        return EXPERIMENTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown experiment {name!r}; valid: {', '.join(NAMES)}") from None
