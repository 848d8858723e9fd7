"""What the website shows, read from results/ (and the pictures in figures/), checked once.

The site generator never opens a model or the data: everything comes from the aggregate stage's records,
so the site rebuilds from a fresh clone with ``dvc pull figures`` and no checkpoints. Every record is checked
when it is loaded (ids against the id grammar, the keys the pages read), so a hand-edited or stale file is
one error naming it, never a traceback in the middle of a template.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.core import records, submissions
from pipeline.core.cells import parse_cell_id
from pipeline.core.errors import DataError, PipelineError
from pipeline.core.experiments import EXPERIMENTS
from pipeline.core.outputs import read_json, read_table, require_keys
from pipeline.core.paths import FIGURES_DIR, RESULTS_DIR, SCORES_DIR
from pipeline.core.viewer import payload_of
from pipeline.results.aggregate import COLUMNS, RECIPE_COLUMNS
from pipeline.site import try_page

EXPERIMENT_NAMES = {name: experiment.title for name, experiment in EXPERIMENTS.items()}
EXPERIMENT_BLURBS = {name: experiment.blurb for name, experiment in EXPERIMENTS.items()}
ARCHITECTURE_NAMES = {"unet": "Unet", "linknet": "Linknet", "fpn": "FPN", "pspnet": "PSPNet"}
# Sources that are not measurements of a real dataset: the site says so on every page.
SYNTHETIC_SOURCES = {"phantom": "synthetic CT phantoms", "fixture": "a made-up results fixture (for tests)"}
STATUSES = ("ok", "failed", "degenerate")
SOURCES = ("grid", "external")

AGGREGATE = "rerun the aggregate stage (`dvc repro aggregate`)"
MODEL = {**records.TRAIN, "status": records.one_of(*STATUSES)}
# What aggregate publishes of an evaluation (pipeline.results.aggregate): no t interval of the HD95 mean, its
# median's order-statistic interval instead, and no interval where fewer than 5 volumes define the metric.
_OPTIONAL_DISTANCE = records.number(0.0, optional=True)
PUBLISHED = {
    **{key: check for key, check in records.EVALUATED.items() if key not in ("hd95_ci_low", "hd95_ci_high")},
    **{f"{metric}_ci_{side}": records.OPTIONAL_SCORE for metric in ("dice", "nsd") for side in ("low", "high")},
    "hd95_median": records.DISTANCE, "hd95_median_ci_low": _OPTIONAL_DISTANCE,
    "hd95_median_ci_high": _OPTIONAL_DISTANCE, "missed_volumes": records.integer(0),
}  # fmt: skip
EVALUATED = {**PUBLISHED, **records.TRAINED, "gflops": records.number(0.0), "size": records.integer(32)}
# A submission's record: its scores, what was scored, its metadata and its paired comparisons.
EXTERNAL = {
    "id": records.text, "status": records.one_of("ok"), "experiment": records.one_of(*EXPERIMENTS),
    **PUBLISHED, "submission": records.mapping({"kind": records.one_of(*submissions.PAYLOADS),
                                                         "files": records.mapping({})}),
    "metadata": records.mapping({**{key: records.text for key in ("title", "authors", "description",
                                                                  "training_data", "submitted")},
                                 **{key: submissions.url_or_empty for key in submissions.URL_FIELDS}}),
    "comparisons": records.listing(records.mapping({"against": records.text, "difference": records.number(),
                                                    "wins": records.integer(0), "losses": records.integer(0),
                                                    "pairs": records.integer(1), "p_holm": records.SCORE,
                                                    "verdict": records.text, "role": records.text})),
}  # fmt: skip
SCORE_COLUMNS = ("dice", "nsd", "sensitivity", "specificity", "precision", "slice_dice", "pooled_dice", "p_rank1")
# Every numeric column of the leaderboard is a finite number or empty; scores lie in [0, 1].
LEADERBOARD = {
    name: records.OPTIONAL_SCORE if name.split("_ci_")[0] in SCORE_COLUMNS else records.number(optional=True)
    for name, decimals in COLUMNS.items() if decimals is not None
} | {"source": records.one_of(*SOURCES)}  # fmt: skip
SUMMARY = {
    **{key: records.mapping({}) for key in ("leaders", "dice", "nsd", "hd95", "paper_comparison", "rankings",
                                            "seed_variance", "bootstrap", "speed", "tolerances", "paper",
                                            "implementation", "pairs", "recipes", "voxel_size", "failures",
                                            "submissions", "preprocess")},
    **{key: records.listing(records.mapping({})) for key in ("excluded", "effects", "size_correlation",
                                                             "best_and_worst")},
    "data_source": records.text, "profile": records.text, "models": records.integer(0),
    "failed": records.integer(0), "degenerate": records.integer(0), "test_volumes": records.integer(0),
    "smallest_wilcoxon_p": records.number(0.0, 1.0),
}  # fmt: skip
RANKINGS = {"rank": records.integer(1), "rank_median": records.integer(1), "rank_low": records.integer(1),
            "rank_high": records.integer(1), "p_rank1": records.SCORE, "tier": records.integer(1)}  # fmt: skip
RANKING_COLUMNS = ("experiment", "metric", "id", *RANKINGS)
SEEDS = {"seed": records.integer(0), "dice": records.OPTIONAL_SCORE}
RECIPES = {"seeds": records.integer(2), "failed_seeds": records.integer(0), "dice": records.SCORE,
           "seed_sd": records.number(0.0), "dice_ci_low": records.OPTIONAL_SCORE,
           "dice_ci_high": records.OPTIONAL_SCORE, "rank": records.integer(1), "rank_low": records.integer(1),
           "rank_high": records.integer(1), "tier": records.integer(1)}  # fmt: skip


def check_model_id(row: dict, path: Path, line: int) -> None:
    """A leaderboard row's id must be a model id of the grammar and agree with its own columns (a submission's:
    a submission name): ids become file names and URLs, so ``../../x`` or markup must never get that far."""
    model_id = str(row["id"])
    if row["source"] == "external":
        try:
            submissions.check_name(model_id)
        except PipelineError as error:
            raise DataError(path, f"row {line}: {error}") from None
        return
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
    volumes: pd.DataFrame  # volume, slices, dice, nsd, hd95, ... (empty if failed)
    seeds: pd.DataFrame  # run, base_seed, seed, status, dice, nsd, hd95, best_epoch (empty without repeats)

    @property
    def status(self) -> str:
        return self.metrics["status"]

    @property
    def external(self) -> bool:
        """A submission (pipeline.submit), not a model the benchmark trained."""
        return self.metrics.get("source") == "external"

    @property
    def evaluated(self) -> bool:
        """Trained to the end and tested (ok or degenerate): it has metrics, curves and pictures."""
        return self.status != "failed"


@dataclass(frozen=True)
class Results:
    leaderboard: pd.DataFrame
    summary: dict
    rankings: pd.DataFrame
    models: dict[str, Model]
    figures: Path
    slices: dict  # experiment -> [{volume, slice}] the mask pictures show
    viewer: dict  # figures/viewer/viewer.json: the volumes each model's viewer shows ({} without viewer data)
    recipes: pd.DataFrame  # results/recipes.csv: the recipes ranked over seeds (empty without repeats)
    # per submission, its viewer scripts' verified payloads by script name (read from the score stage's output)
    submission_viewers: dict[str, dict[str, bytes]] | None = None
    browser: dict | None = None  # browser/index.json: the models the "Try it on your scan" panel runs
    browser_dir: Path | None = None

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

    @property
    def grid(self) -> pd.DataFrame:
        """The leaderboard's rows of the benchmark's own models (not the submissions)."""
        return self.leaderboard[self.leaderboard["source"] == "grid"]

    def present(self, column: str) -> list[str]:
        """The values of a column that occur among the grid's models, in their natural order (only these become
        chart options)."""
        order = {"architecture": list(ARCHITECTURE_NAMES), "encoder_weights": ["random", "imagenet"]}.get(column)
        values = list(dict.fromkeys(self.grid[column]))
        return sorted(values, key=order.index) if order else values


_PREPROCESSING = records.mapping({"size": records.integer(32, 4096), "hu_offset": records.number(),
                                  "hu_scale": records.number(1e-6)})  # fmt: skip
# Every field a page formats, where a record has it: the leaderboard's columns (numbers where they have
# decimals, else text), the viewer's volumes, and what a submission was run with.
FORMATTED = {
    **{name: LEADERBOARD.get(name, records.number(optional=True)) if decimals is not None else records.text
       for name, decimals in COLUMNS.items()},
    "viewer": records.listing(records.text), "ranked_among": records.integer(1),
    # printed with the decimals its resampling supports: a number, or its text as the CSV holds it
    "p_rank1": lambda value: records.SCORE(_decimal(value) if isinstance(value, str) else value),
    "preprocessing": lambda value: "" if value is None else _PREPROCESSING(value),
}  # fmt: skip


def _decimal(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def check_formatted(metrics: dict, path: Path) -> None:
    """Every field of ``metrics`` that a page formats has the type the page expects (a rank given as text or a
    speed device given as a number would otherwise fail deep inside the build, or print wrong)."""
    present = {key: check for key, check in FORMATTED.items() if key in metrics and metrics[key] is not None}
    records.check_record(metrics, present, path, AGGREGATE)
    about = metrics.get("submission")
    if isinstance(about, dict) and "preprocessing" in about:
        records.check_record(about, {"preprocessing": FORMATTED["preprocessing"]}, path, AGGREGATE)


def _external(results_dir: Path, model_id: str) -> Model:
    folder = results_dir / model_id
    path = folder / "metrics.json"
    metrics = records.check_record(read_json(path, AGGREGATE), EXTERNAL, path, AGGREGATE)
    check_formatted(metrics, path)
    if metrics["id"] != model_id or metrics.get("source") != "external":
        raise DataError(path, f"is the record of {metrics['id']!r}, not of the submission {model_id}")
    volumes = records.read_volume_table(folder / "volumes.csv", metrics["test_volumes"], AGGREGATE)
    return Model(model_id, metrics, pd.DataFrame(), volumes, pd.DataFrame())


def _model(results_dir: Path, model_id: str, status: str, source: str = "grid") -> Model:
    if source == "external":
        return _external(results_dir, model_id)
    folder = results_dir / model_id
    path = folder / "metrics.json"
    metrics = records.check_record(read_json(path, AGGREGATE), MODEL, path, AGGREGATE)
    check_formatted(metrics, path)
    if metrics["id"] != model_id or metrics["status"] != status:
        raise DataError(path, f"is the record of {metrics['id']!r} ({metrics['status']}), not of {model_id} ({status})")
    evaluated = status != "failed"
    history, volumes = pd.DataFrame(), pd.DataFrame()
    if evaluated:
        records.check_record(metrics, EVALUATED, path, AGGREGATE)
        history = records.read_history(folder / "history.csv", AGGREGATE)
        volumes = records.read_volume_table(folder / "volumes.csv", metrics["test_volumes"], AGGREGATE)
    seeds = read_table(folder / "seeds.csv", ("run", "seed", "status", "dice"), AGGREGATE, optional=True)
    if not seeds.empty:
        records.check_columns(seeds, SEEDS, folder / "seeds.csv", AGGREGATE)
    return Model(model_id, metrics, history, volumes, seeds)


def load_results(results_dir: Path = RESULTS_DIR, figures_dir: Path = FIGURES_DIR, scores_dir: Path = SCORES_DIR,
                 browser_dir: Path | None = None) -> Results:  # fmt: skip
    """Everything the site shows; one DataError naming the file when something is missing or malformed."""
    board_path = results_dir / "leaderboard.csv"
    board = read_table(board_path, tuple(COLUMNS), AGGREGATE)
    board["status_reason"] = board["status_reason"].astype(object).fillna("")  # all empty: read as numbers
    if board.empty:
        raise DataError(board_path, "has no models")
    records.check_columns(board, LEADERBOARD, board_path, AGGREGATE)
    for line, row in enumerate(board.to_dict("records"), start=2):
        check_model_id(row, board_path, line)
    if board["id"].duplicated().any():
        raise DataError(board_path, f"lists {board['id'][board['id'].duplicated()].iloc[0]} twice")
    unknown = sorted(set(board["status"]) - set(STATUSES))
    if unknown:
        raise DataError(board_path, f"has the unknown status {unknown[0]!r}; valid: {', '.join(STATUSES)}")
    summary_path = results_dir / "summary.json"
    summary = records.check_record(read_json(summary_path, AGGREGATE), SUMMARY, summary_path, AGGREGATE)
    rankings = read_table(results_dir / "rankings.csv", RANKING_COLUMNS, AGGREGATE)
    records.check_columns(rankings, RANKINGS, results_dir / "rankings.csv", AGGREGATE)
    stray = sorted(set(rankings["id"]) - set(board["id"]))
    if stray:
        raise DataError(results_dir / "rankings.csv", f"ranks {stray[0]}, which the leaderboard does not list")
    models = {
        model_id: _model(results_dir, model_id, status, source)
        for model_id, status, source in zip(board["id"], board["status"], board["source"], strict=True)
    }
    slices = read_json(figures_dir / "slices.json", "draw the figures first (`dvc repro figures`)")
    viewer_path = figures_dir / "viewer" / "viewer.json"
    viewer = read_json(viewer_path, "draw the figures (`dvc repro figures`)") if viewer_path.exists() else {}
    if viewer:
        require_keys(
            viewer, ("models", "volumes", "typical"), viewer_path, "draw the figures again (`dvc repro figures`)"
        )
        names = set(viewer["models"]) - set(board["id"])
        if names:
            raise DataError(viewer_path, f"lists {sorted(names)[0]}, which the leaderboard does not")
        for model_id, volumes in viewer["models"].items():
            if not all(isinstance(v, str) and v.isalnum() for v in volumes):
                raise DataError(viewer_path, f"gives {model_id} a volume that is not a plain folder name")
    recipes = read_table(results_dir / "recipes.csv", RECIPE_COLUMNS, AGGREGATE)
    records.check_columns(recipes, RECIPES, results_dir / "recipes.csv", AGGREGATE)
    viewers = {name: submission_viewer(scores_dir / name / "viewer", name) for name, model in models.items()
               if model.external}  # fmt: skip
    browser = try_page.load_browser(browser_dir) if browser_dir is not None else None
    if browser:
        unknown = sorted(set(browser["models"]) - set(board["id"]))
        if unknown:
            path = Path(browser_dir) / try_page.INDEX
            raise DataError(path, f"has {unknown[0]}, which the leaderboard does not list; {try_page.REMEDY}")
    return Results(board, summary, rankings, models, figures_dir, slices, viewer, recipes, viewers, browser,
                   browser_dir)  # fmt: skip


def submission_viewer(scripts: Path, name: str) -> dict[str, bytes]:
    """A submission's viewer data (scores/<name>/viewer/) as verified payloads by script name: its label volumes
    under its own name (``<name>--<volume>``) and the scans' CT (``ct-<volume>``). A stored script is data,
    never code: one that is not exactly what the score stage writes is refused before any page is written."""
    payloads = {}
    for path in sorted(scripts.iterdir()) if scripts.is_dir() else ():
        key = path.name.removesuffix(".js")
        owned = key.startswith(f"{name}--") or key.startswith("ct-")
        payload = payload_of(path.read_text(errors="replace"), key) if path.is_file() and owned else None
        if payload is None:
            raise DataError(path, f"is not a viewer script the score stage writes for {name}; score it again "
                                  "(`dvc repro -f score`)")  # fmt: skip
        payloads[key] = payload
    return payloads


def intensity(results: Results) -> dict:
    path, remedy = results.figures / "intensity.json", "draw the figures first (`dvc repro figures`)"
    return require_keys(read_json(path, remedy), ("bins", "normalisation", "experiments"), path, remedy)


def write_downloads(results: Results, out: Path) -> None:
    """The leaderboard as CSV and JSON, whole and per experiment, plus the rankings and the summary."""
    out.mkdir(parents=True, exist_ok=True)
    board = results.leaderboard
    for name, rows in [("leaderboard", board)] + [
        (f"leaderboard-{e}", board[board["experiment"] == e]) for e in results.experiments
    ]:
        rows.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        records = json.loads(rows.to_json(orient="records", double_precision=6))
        (out / f"{name}.json").write_text(json.dumps(records, indent=1) + "\n")
    results.rankings.to_csv(out / "rankings.csv", index=False, float_format="%.6g")
    results.recipes.to_csv(out / "recipes.csv", index=False, float_format="%.6g")
    (out / "summary.json").write_text(json.dumps(results.summary, indent=1, sort_keys=True) + "\n")
