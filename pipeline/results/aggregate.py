"""Stage ``aggregate``: the tidy results that the site and researchers read, with how sure each claim is.

    python -m pipeline.results.aggregate   (as dvc.yaml runs it; reads params `profile`, `grid`, `repeats`, `evaluate`)

Reads models/<run>/{train.json, history.csv}, evaluation/<run>/, speed.json and reference/; writes results/
(small, committed to git):

- ``leaderboard.csv``: one row per model of the grid in grid order, fixed precision (same inputs, same bytes):
  status (``ok``, ``failed``, or ``degenerate`` for a run that did not learn, with the reason), the headline
  metrics with bootstrap intervals over test volumes, the rank with its bootstrap interval, P(rank 1) and
  tier (pipeline.results.ranking), the spread of Dice over training seeds where repeats were run, size and the
  dedicated speed timing with its device (pipeline.evaluation.speed);
- ``rankings.csv``: the rank statistics of every experiment for each ranked metric (Dice, NSD, HD95);
- ``volumes.csv``: every run (main runs and repeats) x test volume, long: the per-volume scores every
  statistic here is computed from;
- ``<id>/``: ``metrics.json`` (the model's row plus every metric and its training record), ``history.csv``,
  ``volumes.csv``, and ``seeds.csv`` (each run's scores) where repeats were run;
- ``summary.json``: the findings (pipeline.results.findings), the ranking stability per experiment (Kendall's tau,
  tiers, blob-plot data), the seed spread against the rank gaps, and the paper's numbers from reference/;
- ``headline.json``: a few numbers per experiment for ``dvc metrics show``.
"""

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import submissions
from pipeline.core.cells import Run
from pipeline.core.config import Params, load_params
from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.experiments import NAMES as EXPERIMENTS
from pipeline.core.outputs import read_json, replace_directory
from pipeline.core.paths import (
    EVALUATION_DIR,
    MODELS_DIR,
    PARAMS_FILE,
    REFERENCE_DIR,
    RESULTS_DIR,
    SCORES_DIR,
    SPEED_FILE,
    SUBMISSIONS_DIR,
)
from pipeline.core.records import (
    check_record,
    listing,
    read_evaluation,
    read_history,
    read_speed,
    read_train_record,
    text,
)
from pipeline.results import findings, placement, ranking, schema
from pipeline.results.paper import paper_best, paper_reported, paper_rows, paper_summary, table_check
from pipeline.results.recipes import Recipe, recipe_ranking

BLOB_MODELS = 20  # models per experiment in the blob plot
RANKED = ranking.RANKED
PRIMARY = "dice"  # the primary endpoint: leaders are named and submissions judged on it; NSD and HD95 are secondary
# A run whose best validation loss stays within this of the loss of predicting nothing did not learn.
NULL_LOSS_MARGIN = 0.001
EVALUATE = "evaluate the models first (`dvc repro evaluate`)"

# Column -> decimals, in the CSV's order: declared once, with what each column means (pipeline.results.schema).
COLUMNS = schema.decimals(schema.LEADERBOARD)
EVALUATED = ("dice", "dice_ci_low", "dice_ci_high", "nsd", "nsd_ci_low", "nsd_ci_high", "hd95", "sensitivity",
             "specificity", "precision", "precision_volumes", "slice_dice",
             "pooled_dice", "paper_sensitivity", "paper_specificity", "paper_dice")  # fmt: skip


def _format(value, decimals: int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if decimals is None:
        return str(value)
    return f"{float(value):.{decimals}f}" if decimals else str(int(value))


def degenerate_reason(train: dict, history: pd.DataFrame) -> str:
    """Why a finished run did not learn, or "" when it did: judged on the validation set alone (its loss never
    got below the loss of predicting nothing). Never on the test set: a rule that looks at test predictions
    would choose which models are ranked by their test results."""
    floor = float(train["null_val_loss"])
    if len(history) and float(history["val_loss"].min()) >= floor - NULL_LOSS_MARGIN:
        return (f"did not learn: the validation loss never went below {floor:.3f}, the loss of predicting "
                f"nothing, in {len(history)} epochs")  # fmt: skip
    return ""


class RunRecords:
    """One run's records from models/ and evaluation/, checked, with its status decided."""

    def __init__(self, run: Run, models_dir: Path, evaluation_dir: Path):
        self.run = run
        self.train = read_train_record(models_dir / run.id)
        self.evaluation, volumes = read_evaluation(evaluation_dir / run.id)
        ok = self.train["status"] == "ok"
        if self.evaluation["status"] != self.train["status"] or self.evaluation["id"] != run.id:
            found, expected = (
                f"{self.evaluation['id']} ({self.evaluation['status']})",
                f"{run.id} ({self.train['status']})",
            )
            raise DataError(evaluation_dir / run.id / "metrics.json",
                            f"is the evaluation of {found}, not of {expected}; {EVALUATE}")  # fmt: skip
        self.history = read_history(models_dir / run.id / "history.csv") if ok else pd.DataFrame()
        self.volumes = volumes if volumes is not None else pd.DataFrame()
        self.status, self.reason = self.train["status"], self.train.get("error", "")
        if ok and (reason := degenerate_reason(self.train, self.history)):
            self.status, self.reason = "degenerate", reason


class ExternalRecords:
    """One submission's record (submissions/<name>/submission.json) and its scores (scores/<name>/)."""

    def __init__(self, name: str, submission: dict, scores_dir: Path):
        self.name, self.submission = name, submission
        self.evaluation, self.volumes = read_evaluation(scores_dir / name)
        if self.evaluation["id"] != name or "submission" not in self.evaluation:
            raise DataError(scores_dir / name / "metrics.json", f"is not the score of {name}; {SCORE}")
        self.status, self.reason = "ok", ""


SCORE = "score the submissions (`dvc repro score`)"


def read_externals(submissions_dir: Path | None, scores_dir: Path | None, params: Params) -> tuple[list, list]:
    """(the scored submissions, in experiment and name order; the names made for other test scans)."""
    if submissions_dir is None or scores_dir is None:
        return [], []
    records = submissions.read_all(submissions_dir)
    if not records:
        return [], []
    index_path = scores_dir / "index.json"
    index = check_record(read_json(index_path, SCORE), {"scored": listing(text), "other_test_set": listing(text)},
                         index_path, SCORE)  # fmt: skip
    known = set(index["scored"]) | set(index["other_test_set"])
    submissions.refuse_grid_names(records, params, submissions_dir)
    for name in records:
        if name not in known:
            raise DataError(submissions_dir / name, f"has not been scored; {SCORE}")
    stale = sorted(known - set(records))
    if stale:
        raise DataError(index_path, f"lists {stale[0]}, which is no longer a submission; {SCORE}")
    # The score stage removes the score of a submission made for other scans: one that has a score here was
    # scored on these scans, whatever the index says (an edited index must not drop a ranked submission).
    hidden = sorted(name for name in index["other_test_set"] if (scores_dir / name / "metrics.json").exists())
    if hidden:
        raise DataError(index_path, f"lists {hidden[0]} as made for other test scans, but it was scored on these; "
                                    f"{SCORE}")  # fmt: skip
    order = {name: index for index, name in enumerate(EXPERIMENTS)}
    scored = [ExternalRecords(name, records[name], scores_dir) for name in index["scored"]]
    scored.sort(key=lambda entry: (order[entry.submission["experiment"]], entry.name))
    return scored, list(index["other_test_set"])


def external_row(entry: ExternalRecords) -> dict:
    """A submission's leaderboard row: its scores, and what is known of its model."""
    about, evaluation = entry.evaluation["submission"], entry.evaluation
    row = {name: evaluation.get(name) for name in EVALUATED}
    params = about.get("params")
    row.update(
        id=entry.name, source="external", experiment=entry.submission["experiment"],
        architecture=about.get("architecture") or None, encoder=about.get("encoder") or None,
        data_source=evaluation.get("data_source"), profile=evaluation.get("profile"), status="ok",
        params_m=params / 1e6 if params else entry.submission.get("params_m"), gflops=about.get("gflops"),
        infer_images_per_s=about.get("infer_images_per_s"), speed_device=about.get("speed_device"),
    )  # fmt: skip
    return row


# The evaluation's t interval of the HD95 mean is not published: with 9 volumes it covers ~85% at a nominal 95%
# (~65% when one volume is missed); HD95 is summarised by its median with an order-statistic interval instead.
UNPUBLISHED = ("hd95_ci_low", "hd95_ci_high")


def volume_intervals(row: dict, volumes: pd.DataFrame, confidence: float) -> None:
    """Set the intervals that a model's per-volume scores support: none for a metric defined on fewer than
    ``findings.MIN_PAIRS`` volumes; HD95's median with its distribution-free interval."""
    if volumes.empty:
        return
    for metric in ("dice", "nsd"):
        if volumes[metric].notna().sum() < findings.MIN_PAIRS:
            row[f"{metric}_ci_low"] = row[f"{metric}_ci_high"] = None
    row["hd95_median"] = float(volumes["hd95"].median())
    row["hd95_median_ci_low"], row["hd95_median_ci_high"], _ = findings.median_interval(volumes["hd95"], confidence)
    row["missed_volumes"] = missed(volumes)


def missed(volumes: pd.DataFrame) -> int:
    """Volumes with a target and no predicted voxel at all: each scores HD95 as the volume's diagonal."""
    return int(((volumes["target_voxels"] > 0) & (volumes["predicted_voxels"] == 0)).sum())


def model_row(records: RunRecords, paper: dict, speed: dict) -> dict:
    train, evaluation = records.train, records.evaluation
    key = (train["experiment"], train["architecture"], train["encoder"], train["encoder_weights"])
    timing = speed.get("networks", {}).get(f"{train['architecture']}-{train['encoder']}", {})
    row = {name: evaluation.get(name) for name in EVALUATED} if train["status"] == "ok" else {}
    row.update(
        {name: train.get(name) for name in ("experiment", "architecture", "encoder", "encoder_weights")},
        id=records.run.id, source="grid", data_source=train["data_source"], profile=train["profile"],
        status=records.status, status_reason=records.reason, paper_reported_dice=paper.get(key),
        params_m=train["params"] / 1e6,
        trained_params_m=train["trained_params"] / 1e6 if train.get("trained_params") else None,
        gflops=train.get("gflops"), infer_images_per_s=timing.get("infer_images_per_s"),
        train_images_per_s=timing.get("train_images_per_s"), speed_device=speed.get("device") if timing else None,
        training_images_per_s=train.get("train_images_per_s"), epochs=train["epochs"],
        best_epoch=train.get("best_epoch"), device=train["device"],
    )  # fmt: skip
    return row


def seed_spread(grid_rows: list[dict], mains: list, repeats: dict[str, list], confidence: float) -> dict:
    """Fill each repeated model's seed columns; {model id: Dice of each run that has scores}. The chi-square
    interval of the seed SD assumes one normal scatter: it is given only where every run learned."""
    seed_dice: dict[str, list[float]] = {}
    for row, main in zip(grid_rows, mains, strict=True):
        if main.run.id not in repeats:
            continue
        evaluated = [r for r in [main, *repeats[main.run.id]] if r.status != "failed"]
        seed_dice[main.run.id] = [float(r.evaluation["dice"]) for r in evaluated]
        row["seeds"] = len(evaluated)
        if len(evaluated) > 1:
            row["seed_dice_sd"] = float(np.std(seed_dice[main.run.id], ddof=1))
            if all(r.status == "ok" for r in evaluated):
                row["seed_dice_sd_ci_low"], row["seed_dice_sd_ci_high"] = findings.sd_interval(
                    row["seed_dice_sd"], len(evaluated), confidence
                )
    return seed_dice


def _seed_rows(main: RunRecords, repeats: list[RunRecords]) -> list[dict]:
    return [
        {"run": records.run.id, "base_seed": records.train.get("base_seed"), "seed": records.train.get("seed"),
         "status": records.status, **{name: records.evaluation.get(name) for name in RANKED},
         "best_epoch": records.train.get("best_epoch")}
        for records in [main, *repeats]
    ]  # fmt: skip


RUN_KEYS = ("experiment", "architecture", "encoder", "encoder_weights")


def volume_rows(records, externals=()) -> pd.DataFrame:
    """Every evaluated run x test volume, one long table (run, model, source, its keys, base seed, status, scores),
    the submissions' after the grid's."""
    frames = [
        r.volumes.assign(run=r.run.id, model=r.run.cell.id, source="grid", **{key: r.train[key] for key in RUN_KEYS},
                         base_seed=r.train.get("base_seed"), status=r.status)
        for r in records if not r.volumes.empty
    ] + [
        e.volumes.assign(run=e.name, model=e.name, source="external", experiment=e.submission["experiment"],
                         architecture=None, encoder=None, encoder_weights=None, base_seed=None, status="ok")
        for e in externals
    ]  # fmt: skip
    first = ["run", "model", "source", *RUN_KEYS, "base_seed", "status"]
    if not frames:
        return pd.DataFrame(columns=[*first, "volume"])
    frame = pd.concat(frames, ignore_index=True)
    return frame[first + [c for c in frame.columns if c not in first]]


def score_matrix(ids: list[str], volumes: dict[str, pd.DataFrame], metric: str) -> np.ndarray:
    """models x volumes, every model's volumes in the first model's order (the readers checked the sets)."""
    order = list(volumes[ids[0]]["volume"])
    return np.stack([volumes[i].set_index("volume").loc[order, metric].to_numpy(dtype=float) for i in ids])


def rank_all(frame: pd.DataFrame, volumes: dict[str, pd.DataFrame],
             settings: ranking.RankSettings) -> tuple[list, dict]:  # fmt: skip
    """Rank statistics of every experiment and ranked metric over the grid's models with status ok (these
    checkpoints, over the test volumes; the family of each experiment's separations, which no submission
    joins): (rows for rankings.csv, summary per metric and experiment)."""
    rows, summary = [], {}
    grid = frame[(frame["status"] == "ok") & (frame["source"] == "grid")]
    for metric, higher in RANKED.items():
        summary[metric] = {}
        for experiment, group in grid.groupby("experiment", sort=False):
            ids = list(group["id"])
            scores = score_matrix(ids, volumes, metric)
            result = ranking.bootstrap_ranking(ids, scores, higher, settings.draws, settings.confidence,
                                               settings.seed, settings.permutations)  # fmt: skip
            rows += [{"experiment": experiment, "metric": metric, **row,
                      "p_rank1": f"{row['p_rank1']:.{result.p_decimals}f}"} for row in result.rows()]  # fmt: skip
            summary[metric][experiment] = {
                "models": len(ids), "cases": result.cases, "resamples": result.resamples, "exact": result.exact,
                "tau_median": round(result.tau_median, 4), "tau_low": round(result.tau_low, 4),
                "tau_high": round(result.tau_high, 4), "tiers": int(result.tier.max()),
                "tier1": int((result.tier == 1).sum()), "blobs": result.blobs(BLOB_MODELS),
                "p_rank1_decimals": result.p_decimals,
                "significance": result.significance(BLOB_MODELS), "primary": metric == PRIMARY,
            }  # fmt: skip
    return rows, summary


RECIPE_COLUMNS = schema.decimals(schema.RECIPES)


def rank_recipes(mains: list, repeats: dict[str, list], settings: ranking.RankSettings) -> list[dict]:
    """recipes.csv: the recipes trained with two or more seeds, per experiment, with seed intervals and tiers
    over seeds (pipeline.results.recipes)."""
    by_experiment: dict[str, list[Recipe]] = {}
    for main in mains:
        runs = [main, *repeats.get(main.run.id, [])]
        scored = [run for run in runs if not run.volumes.empty]
        if len(runs) < 2 or not scored:
            continue
        order = list(scored[0].volumes["volume"])
        matrix = np.stack([run.volumes.set_index("volume").loc[order, "dice"].to_numpy(dtype=float) for run in scored])
        cell = main.run.cell
        recipe = Recipe(
            (cell.experiment, cell.architecture, cell.encoder, cell.weights), matrix, len(runs) - len(scored)
        )
        by_experiment.setdefault(cell.experiment, []).append(recipe)
    rows = []
    for recipes in by_experiment.values():
        rows += recipe_ranking(recipes, True, settings.confidence)
    return rows


def _write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _write_csv(rows: list[dict], columns: dict, path: Path) -> None:
    """``rows`` as CSV, the columns in ``columns``' order at their precision. A row holding a field the schema
    does not declare is a bug, never a silently dropped number."""
    undeclared = sorted({key for row in rows for key in row} - set(columns))
    if undeclared:
        raise ValueError(f"{path.name}: the fields {undeclared} are not declared in pipeline.results.schema")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row.get(name), decimals) for name, decimals in columns.items()])


def read_grid(params: Params, models_dir: Path, evaluation_dir: Path) -> tuple[dict, list, dict, list[str]]:
    """(every run's records by id, the main runs in grid order, the seed runs of each repeated cell, the data
    sources the models were trained on: one, or the leaderboard refuses)."""
    runs = params.runs()
    records = {run.id: RunRecords(run, models_dir, evaluation_dir) for run in runs}
    sources = sorted({r.train["data_source"] for r in records.values()})
    if len(sources) > 1:
        raise PipelineError(
            f"{models_dir}: the models were trained on different data sources ({', '.join(sources)}); "
            "one leaderboard never mixes them: retrain the stale ones (`dvc repro`)"
        )
    mains = [records[run.id] for run in runs if run.seed is None]
    repeats: dict[str, list[RunRecords]] = {}
    for run in runs:
        if run.seed is not None:
            repeats.setdefault(run.cell.id, []).append(records[run.id])
    return records, mains, repeats, sources


def write_grid_folders(out_dir: Path, rows: list[dict], mains: list, repeats: dict, table: dict, models_dir: Path,
                       evaluation_dir: Path) -> None:  # fmt: skip
    """results/<id>/ of each grid model: its published record, history, per-volume scores and seed runs."""
    for row, main in zip(rows, mains, strict=True):
        folder = out_dir / row["id"]
        folder.mkdir()
        record = {**main.train, **main.evaluation, **{k: v for k, v in row.items() if v is not None}}
        for key in UNPUBLISHED:
            record.pop(key, None)
        record.update(paper_reported(main.run.cell, table), training_error=main.train.get("error", ""))
        _write_json(record, folder / "metrics.json")
        if not main.history.empty:
            shutil.copyfile(models_dir / main.run.id / "history.csv", folder / "history.csv")
        if not main.volumes.empty:
            shutil.copyfile(evaluation_dir / main.run.id / "volumes.csv", folder / "volumes.csv")
        if main.run.id in repeats:
            pd.DataFrame(_seed_rows(main, repeats[main.run.id])).to_csv(folder / "seeds.csv", index=False,
                                                                       float_format="%.6f")  # fmt: skip


def write_external_folders(out_dir: Path, rows: list[dict], externals: list, comparisons: dict,
                           scores_dir: Path) -> None:  # fmt: skip
    """results/<name>/ of each submission: its record, metadata, paired comparisons and per-volume scores."""
    for row, entry in zip(rows, externals, strict=True):
        folder = out_dir / row["id"]
        folder.mkdir()
        record = {**entry.evaluation, **{k: v for k, v in row.items() if v is not None},
                  "metadata": public_metadata(entry.submission),
                  "comparisons": comparisons[entry.name]}  # fmt: skip
        for key in UNPUBLISHED:
            record.pop(key, None)
        _write_json(record, folder / "metrics.json")
        shutil.copyfile(scores_dir / entry.name / "volumes.csv", folder / "volumes.csv")


def aggregate(params: Params, models_dir: Path, evaluation_dir: Path, out_dir: Path, reference_dir: Path,
              speed_file: Path = SPEED_FILE, submissions_dir: Path | None = None,
              scores_dir: Path | None = None) -> pd.DataFrame:  # fmt: skip
    """Write results/ into ``out_dir``; the leaderboard's frame. Submissions are ranked with the grid's models
    when ``submissions_dir`` and ``scores_dir`` are given."""
    table = paper_rows(reference_dir)
    paper = {key: row["dice"] for key, row in table.items()}
    speed = read_speed(speed_file)
    records, mains, repeats, sources = read_grid(params, models_dir, evaluation_dir)
    externals, other_test_set = read_externals(submissions_dir, scores_dir, params)
    settings = ranking.RankSettings.from_params(params)
    grid_rows = [model_row(main, paper, speed) for main in mains]
    external_rows = [external_row(entry) for entry in externals]
    rows = grid_rows + external_rows
    for row, source in [*zip(grid_rows, mains, strict=True), *zip(external_rows, externals, strict=True)]:
        volume_intervals(row, source.volumes, settings.confidence)
    mixed = sorted({row["data_source"] for row in external_rows} - set(sources))
    if mixed and sources:
        raise DataError(scores_dir, f"holds scores on {mixed[0]} data, the models' are {sources[0]}; {SCORE}")
    frame = pd.DataFrame(rows, columns=list(schema.decimals(schema.LEADERBOARD)))
    volumes = {main.run.id: main.volumes for main in mains if main.status == "ok"}
    volumes.update({entry.name: entry.volumes for entry in externals})
    ranks, rank_summary = rank_all(frame, volumes, settings)
    dice_ranks = {row["id"]: row for row in ranks if row["metric"] == PRIMARY}
    for row in grid_rows:
        row.update({k: v for k, v in dice_ranks.get(row["id"], {}).items() if k not in ("id", "experiment", "metric")})
    grid_frame = pd.DataFrame(grid_rows, columns=list(schema.decimals(schema.LEADERBOARD)))
    comparisons = {}
    for row, entry in zip(external_rows, externals, strict=True):
        baselines = grid_baselines(entry, grid_frame, volumes)  # once per submission: its place and comparisons
        row.update(external_place(entry, baselines, settings))
        comparisons[entry.name] = external_comparisons(entry, baselines, row["params_m"], settings)
    seed_dice = seed_spread(grid_rows, mains, repeats, settings.confidence)
    frame = pd.DataFrame(rows, columns=list(schema.decimals(schema.LEADERBOARD)))
    grid_frame = frame[frame["source"] == "grid"]
    write_grid_folders(out_dir, grid_rows, mains, repeats, table, models_dir, evaluation_dir)
    write_external_folders(out_dir, external_rows, externals, comparisons, scores_dir)
    # The columns as declared when this runs (pipeline.results.schema): a declared column is a written one.
    _write_csv(rows, schema.decimals(schema.LEADERBOARD), out_dir / "leaderboard.csv")
    volume_rows(records.values(), externals).to_csv(out_dir / "volumes.csv", index=False, float_format="%.6f")
    _write_csv(ranks, schema.decimals(schema.RANKINGS), out_dir / "rankings.csv")
    recipes = rank_recipes(mains, repeats, settings)
    _write_csv(recipes, schema.decimals(schema.RECIPES), out_dir / "recipes.csv")
    summary = summarise(grid_frame, params, reference_dir, table, rank_summary, seed_dice, speed, settings)
    summary.update(
        submissions=submission_summary(frame, other_test_set),
        # What a submitted model without preprocessing.json is run with (pipeline.submit records the same).
        preprocess={key: getattr(params.preprocess, key) for key in ("size", "hu_offset", "hu_scale")},
        recipes=recipe_summary(recipes), voxel_size=voxel_size(mains),
        implementation=next((m.evaluation["implementation"] for m in mains if "implementation" in m.evaluation),
                            {"surface": "not run: no model was evaluated", "library": "not run"}),
    )  # fmt: skip
    _write_json(summary, out_dir / "summary.json")
    _write_json(headline(grid_frame), out_dir / "headline.json")
    return frame


def public_metadata(submission: dict) -> dict:
    """What a submission's page shows of its record (free text is escaped by the site, like every value)."""
    keys = ("kind", "title", "authors", "url", "paper", "description", "training_data", "submitted", "files",
            "profile", "data_source", "params_m", "preprocessing")  # fmt: skip
    return {key: submission.get(key) for key in keys}


def grid_baselines(entry: ExternalRecords, grid: pd.DataFrame, volumes: dict) -> placement.Baselines | None:
    """The grid's ranked checkpoints of the submission's experiment, their scores in its volumes' order."""
    ok = grid[(grid["status"] == "ok") & (grid["experiment"] == entry.submission["experiment"])]
    if ok.empty:
        return None
    ids = list(ok["id"])
    order = list(entry.volumes["volume"])
    scores = {metric: score_matrix(ids, volumes, metric) for metric in RANKED}
    aligned = {metric: matrix[:, [list(volumes[ids[0]]["volume"]).index(v) for v in order]]
               for metric, matrix in scores.items()}  # fmt: skip
    sizes = {row.id: float(row.params_m) for row in ok.itertuples() if row.params_m == row.params_m}
    return placement.Baselines(ids, order, aligned, sizes)


def external_place(entry: ExternalRecords, baselines: placement.Baselines | None,
                   settings: ranking.RankSettings) -> dict:  # fmt: skip
    """A submission's rank, rank set, P(rank 1) and tier on Dice among the grid's checkpoints plus itself
    (the grid's own tiers are computed without it), as ``pipeline.submit``'s dry run reports them."""
    if baselines is None:
        return {}
    entry_scores = {metric: entry.volumes.set_index("volume").loc[baselines.volumes, metric].to_numpy(dtype=float)
                    for metric in RANKED}  # fmt: skip
    placed = placement.place(entry.name, entry_scores, baselines, {PRIMARY: RANKED[PRIMARY]}, settings)[PRIMARY]
    keys = ("rank", "rank_median", "rank_low", "rank_high", "p_rank1", "tier", "tier_p")
    return {**{key: placed[key] for key in keys}, "ranked_among": placed["models"]}


def external_comparisons(entry: ExternalRecords, baselines: placement.Baselines | None, params_m: float | None,
                         settings: ranking.RankSettings) -> list[dict]:  # fmt: skip
    """The submission (``params_m`` million parameters, where known: its leaderboard row's) against the leader of
    the grid's checkpoints and against those of similar size, on Dice (pipeline.results.placement: a relevance
    margin, exact Wilcoxon, Holm over these comparisons)."""
    if baselines is None:
        return []
    order = baselines.volumes
    against = placement.compared_with(baselines, params_m)
    entry_dice = entry.volumes.set_index("volume").loc[order, "dice"].to_numpy(dtype=float)
    rows = placement.comparisons(entry_dice, baselines, against, margin=settings.relevant_difference,
                                 alpha=settings.alpha)  # fmt: skip
    for row in rows:
        row["role"] = "leader" if row["against"] == against[0] else "similar size"
    return rows


def leader_row(group: pd.DataFrame) -> pd.Series:
    """The one leader rule: the best rank on the primary endpoint, ties broken by id."""
    return group.sort_values(["rank", "id"]).iloc[0]


def submission_summary(frame: pd.DataFrame, other_test_set: list[str]) -> dict:
    """How many submissions were ranked, per experiment the best one, and those made for other test scans."""
    external = frame[frame["source"] == "external"]
    best = {}
    for experiment, group in external.groupby("experiment", sort=False):
        top = leader_row(group)
        best[experiment] = {"id": top["id"], "rank": int(top["rank"]), "tier": int(top["tier"]),
                            "dice": round(float(top["dice"]), 4), "entries": len(group)}  # fmt: skip
    return {"ranked": len(external), "best": best, "other_test_set": other_test_set}


def recipe_summary(recipes: list[dict]) -> dict:
    """Per experiment: how many recipes were ranked over seeds, and those in tier 1."""
    out: dict = {}
    for row in recipes:
        entry = out.setdefault(row["experiment"], {"recipes": 0, "tier1": [], "seeds": []})
        entry["recipes"] += 1
        entry["seeds"] = sorted(set(entry["seeds"]) | {row["seeds"]})
        if row["tier"] == 1:
            entry["tier1"].append("-".join((row["experiment"], row["architecture"], row["encoder"],
                                            row["encoder_weights"])))  # fmt: skip
    return out


def voxel_size(mains: list) -> dict:
    """The test volumes' voxel size (mm): in-plane and between slices, smallest and largest, from the
    evaluations (which read each scan's header), to set the NSD tolerances against."""
    spacing = next((m.evaluation["test_spacing_mm"] for m in mains if "test_spacing_mm" in m.evaluation), {})
    if not spacing:
        return {}
    in_plane = [value for volume in spacing.values() for value in volume[1:]]
    between = [volume[0] for volume in spacing.values()]
    return {"in_plane_min": round(min(in_plane), 4), "in_plane_max": round(max(in_plane), 4),
            "slice_min": round(min(between), 4), "slice_max": round(max(between), 4)}  # fmt: skip


def failures(frame: pd.DataFrame) -> dict:
    """Per experiment and factor (architecture, encoder, initialisation): of how many models how many did not
    learn or failed, for every value of the factor that has an exclusion."""
    out: dict = {}
    for experiment, group in frame.groupby("experiment", sort=False):
        out[experiment] = {}
        for factor in ("architecture", "encoder", "encoder_weights"):
            counts = {}
            for value, models in group.groupby(factor, sort=False):
                degenerate, failed = (
                    int((models["status"] == "degenerate").sum()),
                    int((models["status"] == "failed").sum()),
                )
                if degenerate or failed:
                    counts[str(value)] = {"models": len(models), "degenerate": degenerate, "failed": failed}
            out[experiment][factor] = counts
    return out


def summarise(frame: pd.DataFrame, params: Params, reference_dir: Path, table: dict, rank_summary: dict,
              seed_dice: dict, speed: dict, settings: ranking.RankSettings) -> dict:  # fmt: skip
    """summary.json: every finding by name, and what it rests on."""
    ok = frame[frame["status"] == "ok"]
    experiments = list(dict.fromkeys(frame["experiment"]))
    leaders = {}
    for experiment, group in ok.groupby("experiment", sort=False):
        leader = leader_row(group)
        tier1 = group[group["tier"] == 1].sort_values(["rank", "id"])
        leaders[experiment] = {
            "id": leader["id"], "dice": round(float(leader["dice"]), 4), "p_rank1": float(leader["p_rank1"]),
            "rank_low": int(leader["rank_low"]), "rank_high": int(leader["rank_high"]),
            "tier1": list(tier1["id"]), "models": len(group),
        }  # fmt: skip
    excluded = frame[frame["status"] != "ok"]
    reported, checks = paper_summary(reference_dir), table_check(reference_dir)
    volumes = max((ranked["cases"] for ranked in rank_summary["dice"].values()), default=0)
    return {
        # Results of different data sources never mix: say which one (and which profile) these are.
        "data_source": ", ".join(sorted(frame["data_source"].dropna().unique())),
        "profile": ", ".join(sorted(frame["profile"].dropna().unique())),
        "models": len(frame),
        "failed": int((frame["status"] == "failed").sum()),
        "degenerate": int((frame["status"] == "degenerate").sum()),
        "excluded": [
            {"id": row["id"], "status": row["status"], "reason": row["status_reason"]} for _, row in excluded.iterrows()
        ],
        "leaders": leaders,
        "dice": findings.section(ok, "dice"),
        "nsd": findings.section(ok, "nsd"),
        "hd95": findings.section(ok, "hd95"),
        "effects": findings.effects(
            ok,
            list(params.grid.architectures),
            PRIMARY,
            settings.confidence,
            trained=frame[frame["status"] != "failed"],
            margin=settings.relevant_difference,
        ),
        "failures": failures(frame),
        "pairs": findings.paired_rows(ok),
        "size_correlation": findings.size_correlation(ok),
        "best_and_worst": findings.best_and_worst(ok, list(params.grid.architectures)),
        "paper_comparison": findings.paper_comparison(ok, reported, experiments),
        "rankings": rank_summary,
        "seed_variance": findings.seed_variance(frame, seed_dice, settings.confidence),
        "repeats": {"models": list(params.repeats.models), "seeds": list(params.repeats.seeds)},
        "bootstrap": {"samples": settings.draws, "confidence": settings.confidence, "seed": settings.seed},
        "separations": {
            "method": "Westfall-Young single-step max-T over every pair, paired t, within-volume permutation null",
            "permutations": settings.permutations,
            "alpha": settings.alpha,
            "primary": PRIMARY,
            "relevant_difference": settings.relevant_difference,
        },
        "test_volumes": volumes,
        "smallest_wilcoxon_p": ranking.smallest_wilcoxon_p(volumes or 1),
        "speed": {"device": speed.get("device"), "method": speed.get("method")},
        "tolerances": {
            "lung": params.evaluate.nsd_tolerance_mm_lung,
            "lesion": params.evaluate.nsd_tolerance_mm_lesion,
        },
        "paper": {
            "note": "the paper's Dice (percent, its code's metric) from its text; its summary means are over the "
            "ImageNet half of Table II with the population standard deviation",
            "mean_dice": reported,
            "best": paper_best(reference_dir, table, checks),
            "table_check": checks,
        },
    }


def headline(frame: pd.DataFrame) -> dict:
    ok = frame[frame["status"] == "ok"]
    return {
        experiment: {
            "best_dice": round(float(group["dice"].max()), 4),
            "median_dice": round(float(group["dice"].median()), 4),
            "mean_dice": round(float(group["dice"].mean()), 4),
            "mean_nsd": round(float(group["nsd"].mean()), 4),
            "models": len(group),
        }
        for experiment, group in ok.groupby("experiment", sort=False)
    }


def main() -> None:
    parser = ArgumentParser(description="Aggregate training and evaluation records into results/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--evaluation", type=Path, default=EVALUATION_DIR)
    parser.add_argument("--reference", type=Path, default=REFERENCE_DIR)
    parser.add_argument("--speed", type=Path, default=SPEED_FILE)
    parser.add_argument("--submissions", type=Path, default=SUBMISSIONS_DIR)
    parser.add_argument("--scores", type=Path, default=SCORES_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    params = load_params(args.params)
    with replace_directory(args.out) as staging:
        frame = aggregate(
            params, args.models, args.evaluation, staging, args.reference, args.speed, args.submissions, args.scores
        )
    counts = frame["status"].value_counts()
    print(
        f"aggregate: {len(frame)} models ({counts.get('ok', 0)} ok, {counts.get('degenerate', 0)} did not learn, "
        f"{counts.get('failed', 0)} failed) -> {args.out / 'leaderboard.csv'}"
    )
    for experiment, group in frame[frame["status"] == "ok"].groupby("experiment", sort=False):
        leader = leader_row(group)
        print(f"  {experiment}: leader {leader['id']} dice {leader['dice']:.4f} [{leader['dice_ci_low']:.4f}, "
              f"{leader['dice_ci_high']:.4f}], rank set {int(leader['rank_low'])}-{int(leader['rank_high'])}, "
              f"{int((group['tier'] == 1).sum())} model(s) in tier 1")  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
