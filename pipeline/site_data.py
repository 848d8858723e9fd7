"""What the website shows, read from results/ (and the pictures in figures/), checked once.

The site generator never opens a model or the data: everything comes from the aggregate stage's records,
so the site rebuilds from a fresh clone with ``dvc pull figures`` and no checkpoints.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.aggregate import COLUMNS, RESULTS_DIR
from pipeline.errors import DataError
from pipeline.figures import FIGURES_DIR
from pipeline.outputs import read_json, require_keys

EXPERIMENT_NAMES = {
    "lung": "Lung segmentation",
    "lesion_a": "Lesion segmentation A",
    "lesion_b": "Lesion segmentation B",
}
EXPERIMENT_BLURBS = {
    "lung": "CT slice in, both lungs out.",
    "lesion_a": "CT slice in, COVID-19 lesions out.",
    "lesion_b": "CT slice multiplied by the ground-truth lung mask in, lesions out.",
}
ARCHITECTURE_NAMES = {"unet": "Unet", "linknet": "Linknet", "fpn": "FPN", "pspnet": "PSPNet"}
# Sources that are not measurements of a real dataset: the site says so on every page.
SYNTHETIC_SOURCES = {"phantom": "synthetic CT phantoms", "fixture": "a made-up results fixture (for tests)"}


AGGREGATE = "rerun the aggregate stage (`dvc repro aggregate`)"
# What the pages read of each record: checked when the results are loaded, so a hand-edited or stale file
# is one error naming it, never a traceback in the middle of a template.
MODEL_KEYS = ("id", "experiment", "architecture", "encoder", "encoder_weights", "status", "data_source", "profile")
OK_MODEL_KEYS = (
    "dice", "dice_ci_low", "dice_ci_high", "sensitivity", "specificity", "precision",
    "slice_dice", "slice_sensitivity", "slice_specificity", "slice_precision",
    "pooled_dice", "pooled_sensitivity", "pooled_specificity", "pooled_precision",
    "paper_dice", "paper_sensitivity", "paper_specificity",
    "params", "trained_params", "gflops", "size", "train_images_per_s", "infer_images_per_s", "train_seconds",
    "device", "epochs", "best_epoch", "best_val_loss", "loss", "seed",
)  # fmt: skip
SUMMARY_KEYS = ("data_source", "profile", "models", "failed", "paper", "dice", "paper_dice")
FINDING_KEYS = ("best_model", "by_experiment", "by_architecture", "by_encoder", "imagenet_vs_random",
                "lesion_b_vs_lesion_a")  # fmt: skip


def check_model_id(row: dict, path: Path, line: int) -> None:
    """A leaderboard row's id must be a model id of the grammar and agree with its own columns: ids become
    file names and URLs, so ``../../x`` or markup must never get that far."""
    from pipeline.cells import parse_cell_id

    model_id = str(row["id"])
    try:
        cell = parse_cell_id(model_id)
    except ValueError as error:
        raise DataError(path, f"row {line}: {error}") from None
    columns = (row["experiment"], row["architecture"], row["encoder"], row["encoder_weights"])
    if (cell.experiment, cell.architecture, cell.encoder, cell.weights) != columns:
        raise DataError(path, f"row {line}: the id {model_id} disagrees with its columns {'/'.join(map(str, columns))}")


@dataclass(frozen=True)
class Model:
    id: str
    metrics: dict
    history: pd.DataFrame  # epoch, train_loss, val_loss, train_seconds, val_seconds (empty if failed)
    volumes: pd.DataFrame  # volume, slices, dice, ... (empty if failed)


@dataclass(frozen=True)
class Results:
    leaderboard: pd.DataFrame
    summary: dict
    models: dict[str, Model]
    figures: Path
    slices: dict  # experiment -> [{volume, slice}] the mask pictures show

    @property
    def data_source(self) -> str:
        return self.summary["data_source"]

    @property
    def profile(self) -> str:
        return self.summary["profile"]

    @property
    def synthetic(self) -> bool:
        return self.data_source in SYNTHETIC_SOURCES

    @property
    def experiments(self) -> list[str]:
        return list(dict.fromkeys(self.leaderboard["experiment"]))


def _csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(path, "is missing; run the aggregate stage (`dvc repro aggregate`)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(path, f"is not a readable CSV ({str(error).splitlines()[0]})") from None
    missing = [name for name in required if name not in frame.columns]
    if missing:
        raise DataError(path, f"lacks the columns {', '.join(missing)}; rerun `dvc repro aggregate`")
    return frame


def load_results(results_dir: Path = RESULTS_DIR, figures_dir: Path = FIGURES_DIR) -> Results:
    """Everything the site shows; one DataError naming the file when something is missing or malformed."""
    board_path = results_dir / "leaderboard.csv"
    board = _csv(board_path, tuple(COLUMNS))
    board["error"] = board["error"].fillna("")
    if board.empty:
        raise DataError(board_path, "has no models")
    for line, row in enumerate(board.to_dict("records"), start=2):
        check_model_id(row, board_path, line)
    if board["id"].duplicated().any():
        raise DataError(board_path, f"lists {board['id'][board['id'].duplicated()].iloc[0]} twice")
    summary_path = results_dir / "summary.json"
    summary = require_keys(read_json(summary_path, AGGREGATE), SUMMARY_KEYS, summary_path, AGGREGATE)
    for section in ("dice", "paper_dice"):
        require_keys(summary[section], FINDING_KEYS, summary_path, f"(section {section}) {AGGREGATE}")
    models = {}
    for model_id, status in zip(board["id"], board["status"], strict=True):
        folder = results_dir / model_id
        metrics_path = folder / "metrics.json"
        metrics = require_keys(read_json(metrics_path, AGGREGATE), MODEL_KEYS, metrics_path, AGGREGATE)
        ok = status == "ok"
        if ok:
            require_keys(metrics, OK_MODEL_KEYS, metrics_path, AGGREGATE)
        if metrics["id"] != model_id:
            raise DataError(metrics_path, f"is the record of {metrics['id']!r}, not of {model_id}")
        history = _csv(folder / "history.csv", ("epoch", "train_loss", "val_loss")) if ok else pd.DataFrame()
        volumes = _csv(folder / "volumes.csv", ("volume", "dice")) if ok else pd.DataFrame()
        models[model_id] = Model(model_id, metrics, history, volumes)
    slices = read_json(figures_dir / "slices.json", "draw the figures first (`dvc repro figures`)")
    return Results(board, summary, models, figures_dir, slices)


def intensity(results: Results) -> dict:
    return read_json(results.figures / "intensity.json", "draw the figures first (`dvc repro figures`)")


def write_downloads(results: Results, out: Path) -> None:
    """The leaderboard as CSV and JSON, whole and per experiment, for people who want the numbers."""
    out.mkdir(parents=True, exist_ok=True)
    board = results.leaderboard
    for name, rows in [("leaderboard", board)] + [
        (f"leaderboard-{e}", board[board["experiment"] == e]) for e in results.experiments
    ]:
        rows.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        records = json.loads(rows.to_json(orient="records", double_precision=6))
        (out / f"{name}.json").write_text(json.dumps(records, indent=1) + "\n")
    (out / "summary.json").write_text(json.dumps(results.summary, indent=1, sort_keys=True) + "\n")
