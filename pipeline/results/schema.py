"""Every column the results publish, declared once: its type and decimals, unit, title, what it means and the
population it is about. The CSV writers (column order and precision), the record checks of the site, the
leaderboard table's tooltips and the column tables of site/reference.md are derived from here (a test fails
when reference.md's tables differ from ``python -m pipeline.results.schema --write site/reference.md``).

``{level}`` in a description is the confidence of params ``evaluate.confidence`` (e.g. "95%"), filled in
where the text is shown; no text states a level of its own.

    python -m pipeline.results.schema                          # the tables, as Markdown
    python -m pipeline.results.schema --write site/reference.md   # refresh them between their markers
"""

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ArgumentParser, DataError, run_stage

KINDS = ("text", "integer", "number", "score", "percent", "distance", "probability")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # one of KINDS: "score" in [0, 1], "percent" in [0, 100], "distance" in mm, "probability" as text
    decimals: int | None  # as the CSV prints it; None: as it is (text, or a value printed to its own precision)
    title: str  # a short header
    description: str  # what the number is; "{level}": the confidence level
    population: str = ""  # what the claim is about, where that is not the row's model alone
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")


CHECKPOINTS = "these released checkpoints, on test volumes like these"
RETRAINED = "models retrained from the recipe, scored on these test volumes"

LEADERBOARD: tuple[Field, ...] = (
    Field("id", "text", None, "model", "the model's id (a submission: its name)"),
    Field("source", "text", None, "source", "`grid` (a model the benchmark trained) or `external` (a submission)"),
    Field("experiment", "text", None, "experiment", "lung, lesion A or lesion B"),
    Field("architecture", "text", None, "architecture",
          "the smp architecture (a submission: where its config names one)"),
    Field("encoder", "text", None, "encoder", "the smp encoder (a submission: where its config names one)"),
    Field("encoder_weights", "text", None, "initialisation", "`random` or `imagenet`"),
    Field("data_source", "text", None, "data", "what the model was trained and tested on (never mixed in one board)"),
    Field("profile", "text", None, "profile", "the params profile that produced it"),
    Field("status", "text", None, "status", "`ok`, `failed` or `degenerate` (did not learn: judged on validation)"),
    Field("status_reason", "text", None, "why", "why, when the status is not `ok`"),
    Field("dice", "score", 4, "Dice", "Dice, mean over the test volumes in native geometry (higher is better); the "
          "primary endpoint", CHECKPOINTS),
    Field("dice_ci_low", "score", 4, "Dice low", "lower end of the {level} Student t interval of the mean Dice over "
          "volumes (none from fewer than 5 volumes)", CHECKPOINTS),
    Field("dice_ci_high", "score", 4, "Dice high", "upper end of that interval", CHECKPOINTS),
    Field("rank", "integer", 0, "rank", "rank on Dice among the experiment's `ok` grid models (a submission: among "
          "them plus itself)", CHECKPOINTS),
    Field("rank_median", "integer", 0, "median rank", "the median rank over the resamples of the test volumes "
          "(descriptive)", CHECKPOINTS),
    Field("rank_low", "integer", 0, "rank set from", "best rank of the {level} simultaneous rank set (every pair "
          "compared at once: max-T and Holm over paired t)", CHECKPOINTS),
    Field("rank_high", "integer", 0, "rank set to", "worst rank of that rank set", CHECKPOINTS),
    Field("ranked_among", "integer", 0, "ranked among", "how many models the rank is among (a submission: the "
          "grid's ranked models plus itself; empty for the grid's own, which are ranked among each other)"),
    Field("p_rank1", "probability", None, "P(rank 1)", "how often a resample of the test volumes puts the model "
          "first, to the precision the resampling supports (not the probability that it is the best)", CHECKPOINTS),
    Field("tier", "integer", 0, "tier", "1: cannot be excluded from being the best at {level} (every pair compared "
          "at once); 2: the same among the rest; and so on", CHECKPOINTS),
    Field("tier_p", "probability", 4, "tier p", "the smallest adjusted p of a model with a better mean against it "
          "(empty for the best mean)", CHECKPOINTS),
    Field("seeds", "integer", 0, "seeds", "runs with different seeds (main and repeats), where repeats were run"),
    Field("seed_dice_sd", "number", 4, "seed SD", "sample standard deviation of Dice over those runs", RETRAINED),
    Field("seed_dice_sd_ci_low", "number", 4, "seed SD low", "lower end of its {level} chi-square interval (only "
          "where every run learned)", RETRAINED),
    Field("seed_dice_sd_ci_high", "number", 4, "seed SD high", "upper end of that interval", RETRAINED),
    Field("nsd", "score", 4, "NSD", "normalised surface distance at `evaluate.nsd_tolerance_mm_*`, mean over volumes "
          "(higher is better)", CHECKPOINTS),
    Field("nsd_ci_low", "score", 4, "NSD low", "lower end of its {level} Student t interval (none from fewer than 5 "
          "volumes)", CHECKPOINTS),
    Field("nsd_ci_high", "score", 4, "NSD high", "upper end of that interval", CHECKPOINTS),
    Field("hd95", "distance", 2, "HD95", "95th percentile Hausdorff distance as MONAI computes it (the larger of "
          "the two directed 95th percentiles), mean over volumes (lower is better; no interval: it covered ~85%); a "
          "volume with a target and no prediction counts the scan's diagonal", CHECKPOINTS, "mm"),
    Field("hd95_median", "distance", 2, "HD95 median", "median HD95 over the volumes (what one missed volume cannot "
          "move)", CHECKPOINTS, "mm"),
    Field("hd95_median_ci_low", "distance", 2, "HD95 median low", "lower end of its distribution-free interval "
          "from order statistics (at least {level}; 9 volumes: the 2nd to the 8th smallest, 96.1%)", CHECKPOINTS, "mm"),
    Field("hd95_median_ci_high", "distance", 2, "HD95 median high", "upper end of that interval", CHECKPOINTS, "mm"),
    Field("missed_volumes", "integer", 0, "missed", "test volumes with a target and no predicted voxel"),
    Field("sensitivity", "score", 4, "sensitivity", "TP / (TP + FN), mean over the volumes with a target"),
    Field("specificity", "score", 4, "specificity", "TN / (TN + FP), mean over volumes"),
    Field("precision", "score", 4, "precision", "TP / (TP + FP), mean over volumes (0 for a volume with a target "
          "and no prediction)"),
    Field("precision_volumes", "integer", 0, "precision volumes", "how many volumes the precision mean covers (one "
          "with neither target nor prediction has none)"),
    Field("slice_dice", "score", 4, "slice Dice", "Dice averaged over working-size slices"),
    Field("pooled_dice", "score", 4, "pooled Dice", "Dice of all test voxels counted together"),
    Field("paper_sensitivity", "percent", 2, "paper sensitivity", "the published code's sensitivity, percent"),
    Field("paper_specificity", "percent", 2, "paper specificity", "the published code's specificity, percent"),
    Field("paper_dice", "percent", 2, "paper Dice", "the published code's Dice, percent (empty slices score 100; "
          "compare with Table II)"),
    Field("paper_reported_dice", "percent", 2, "Table II", "the paper's own Table II Dice for this model, percent, "
          "where the row survives"),
    Field("params_m", "number", 2, "params", "parameters, millions", unit="M"),
    Field("trained_params_m", "number", 2, "trained params", "parameters that received a gradient, millions",
          unit="M"),
    Field("gflops", "number", 2, "GFLOPs", "floating-point operations of one forward pass at the working size, "
          "billions"),
    Field("infer_images_per_s", "number", 1, "images/s", "the `speed` stage's inference throughput of this network",
          unit="images/s"),
    Field("train_images_per_s", "number", 1, "train images/s", "the `speed` stage's training throughput",
          unit="images/s"),
    Field("speed_device", "text", None, "speed device", "the device that timed it"),
    Field("training_images_per_s", "number", 1, "training images/s", "throughput sampled during training (on "
          "whatever else the machine was doing)", unit="images/s"),
    Field("epochs", "integer", 0, "epochs", "epochs trained"),
    Field("best_epoch", "integer", 0, "best epoch", "the epoch kept (lowest validation loss)"),
    Field("device", "text", None, "device", "the training device"),
)  # fmt: skip

RECIPES: tuple[Field, ...] = (
    Field("experiment", "text", None, "experiment", "the recipe's experiment"),
    Field("architecture", "text", None, "architecture", "the recipe's architecture"),
    Field("encoder", "text", None, "encoder", "the recipe's encoder"),
    Field("encoder_weights", "text", None, "initialisation", "the recipe's initialisation"),
    Field("seeds", "integer", 0, "seeds", "runs with scores (main and repeats)"),
    Field("failed_seeds", "integer", 0, "failed seeds", "runs that failed without scores"),
    Field("dice", "score", 4, "Dice", "mean Dice over the runs (each run's mean over the test volumes)", RETRAINED),
    Field("dice_ci_low", "score", 4, "Dice low", "lower end of its {level} Student t interval on runs - 1 degrees "
          "of freedom (seeds as a random effect)", RETRAINED),
    Field("dice_ci_high", "score", 4, "Dice high", "upper end of that interval", RETRAINED),
    Field("seed_sd", "number", 4, "seed SD", "sample standard deviation of the runs' mean Dice", RETRAINED),
    Field("rank", "integer", 0, "rank", "rank by mean Dice (descriptive)", RETRAINED),
    Field("rank_low", "integer", 0, "rank set from", "best rank of the rank set from Welch tests, Holm over every "
          "pair", RETRAINED),
    Field("rank_high", "integer", 0, "rank set to", "worst rank of that rank set", RETRAINED),
    Field("tier", "integer", 0, "tier", "1: cannot be excluded from being the best recipe at {level}", RETRAINED),
)  # fmt: skip

RANKINGS: tuple[Field, ...] = (
    Field("experiment", "text", None, "experiment", "the experiment"),
    Field("metric", "text", None, "metric", "`dice` (primary), `nsd` or `hd95` (secondary)"),
    *(field for field in LEADERBOARD if field.name in ("id", "rank", "rank_median", "rank_low", "rank_high",
                                                        "p_rank1", "tier", "tier_p")),
)  # fmt: skip


def tables() -> dict[str, tuple[Field, ...]]:
    """Each published CSV's declared columns (read when called: a column added to a table is in)."""
    return {"leaderboard": LEADERBOARD, "recipes": RECIPES, "rankings": RANKINGS}


def decimals(table: tuple[Field, ...]) -> dict[str, int | None]:
    """Column -> decimals, in the CSV's order: what the writers print."""
    return {field.name: field.decimals for field in table}


def field(table: tuple[Field, ...], name: str) -> Field:
    return next(item for item in table if item.name == name)


def described(text: str, level: str) -> str:
    return text.replace("{level}", level)


def markdown(name: str, level: str = "95%") -> str:
    """The column table of ``name`` (a key of ``tables()``) for site/reference.md."""
    lines = [f"| {name} column | unit | meaning | about |", "|---|---|---|---|"]
    for item in tables()[name]:
        lines.append(f"| `{item.name}` | {item.unit} | {described(item.description, level)} | {item.population} |")
    return "\n".join(lines)


def _marked(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- schema:{name} -->\n)(.*?)(<!-- /schema:{name} -->)", re.S)


def refreshed(text: str) -> str:
    """``text`` with every table between its ``<!-- schema:NAME -->`` markers made anew from the schema."""
    for name in tables():
        text = _marked(name).sub(lambda match, name=name: match.group(1) + markdown(name) + "\n" + match.group(3), text)
    return text


def main() -> None:
    parser = ArgumentParser(description="The published columns, as Markdown tables.")
    parser.add_argument("--write", type=Path, help="refresh the tables between their markers in this file")
    args = parser.parse_args()
    if args.write is None:
        print("\n\n".join(markdown(name) for name in tables()))
        return
    try:
        text = args.write.read_text()
    except OSError as error:
        raise DataError(args.write, f"cannot be read ({error.strerror})") from None
    args.write.write_text(refreshed(text))
    print(f"schema: the column tables of {args.write} written from pipeline.results.schema")


if __name__ == "__main__":
    run_stage(main)
