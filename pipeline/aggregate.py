"""Stage ``aggregate``: the tidy results that the site and researchers read, and the paper's findings recomputed.

    python -m pipeline.aggregate       (as dvc.yaml runs it; reads params `profile` and `grid`)

Reads models/<id>/{train.json, history.csv} and evaluation/<id>/; writes results/ (small, committed to git):

- ``leaderboard.csv``: one row per model in grid order, fixed precision, so the same inputs give the same bytes;
- ``<id>/``: ``metrics.json`` (the model's row plus every metric), ``history.csv``, ``volumes.csv``;
- ``summary.json``: the paper's findings by name (best model per experiment; mean and standard deviation of
  Dice per experiment, architecture and encoder; ImageNet vs random; lesion B vs A), for the correct Dice
  and for the paper-compatible one, with the paper's own numbers from reference/ alongside where they exist;
- ``headline.json``: a few numbers per experiment for ``dvc metrics show``.
"""

import argparse
import csv
import json
import math
import shutil
from pathlib import Path

import pandas as pd

from pipeline.config import PARAMS_FILE, load_params
from pipeline.errors import PipelineError, run_stage
from pipeline.evaluate import EVALUATION_DIR, read_train_record
from pipeline.outputs import read_json, replace_directory
from pipeline.train import MODELS_DIR

RESULTS_DIR = Path("results")
REFERENCE_DIR = Path("reference")

# Column -> decimals. Scores in [0, 1] get 4, percentages 2, sizes 2, rates 1.
COLUMNS = {
    "id": None, "experiment": None, "architecture": None, "encoder": None, "encoder_weights": None,
    "data_source": None, "profile": None, "status": None,
    "dice": 4, "dice_ci_low": 4, "dice_ci_high": 4, "sensitivity": 4, "specificity": 4, "precision": 4,
    "slice_dice": 4, "pooled_dice": 4, "paper_sensitivity": 2, "paper_specificity": 2, "paper_dice": 2,
    "paper_reported_dice": 2, "params_m": 2, "trained_params_m": 2, "gflops": 2,
    "train_images_per_s": 1, "infer_images_per_s": 1, "epochs": 0, "best_epoch": 0, "device": None, "error": None,
}  # fmt: skip
FINDING_METRICS = ("dice", "paper_dice")


def _format(value, decimals: int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if decimals is None:
        return str(value)
    return f"{float(value):.{decimals}f}" if decimals else str(int(value))


def paper_rows(reference_dir: Path) -> dict[tuple[str, str, str, str], dict[str, float]]:
    """The paper's Table II (percent: sensitivity, specificity, Dice, as its code defined them) by
    (experiment, architecture, encoder, weights), where the row survives."""
    path = reference_dir / "paper_table2_metrics.csv"
    if not path.exists():
        return {}
    with open(path) as handle:
        return {
            (row["experiment"], row["architecture"], row["encoder"], row["encoder_weights"]): {
                name: float(row[name]) for name in ("sensitivity", "specificity", "dice")
            }
            for row in csv.DictReader(handle)
        }


def paper_reported(cell, rows: dict) -> dict:
    """A model's Table II sensitivity and specificity for its metrics.json, when the paper reports them."""
    row = rows.get((cell.experiment, cell.architecture, cell.encoder, cell.weights))
    return {f"paper_reported_{name}": row[name] for name in ("sensitivity", "specificity")} if row else {}


def model_row(train: dict, evaluation: dict, paper: dict) -> dict:
    key = (train["experiment"], train["architecture"], train["encoder"], train["encoder_weights"])
    million = 1e6
    row = {name: evaluation.get(name) for name in COLUMNS if name in evaluation}
    row.update(
        {name: train.get(name) for name in ("id", "experiment", "architecture", "encoder", "encoder_weights")},
        data_source=train["data_source"], profile=train["profile"], status=train["status"],
        error=train.get("error", ""), paper_reported_dice=paper.get(key),
        params_m=train["params"] / million,
        trained_params_m=train["trained_params"] / million if train.get("trained_params") else None,
        gflops=train.get("gflops"), train_images_per_s=train.get("train_images_per_s"),
        infer_images_per_s=train.get("infer_images_per_s"), epochs=train["epochs"],
        best_epoch=train.get("best_epoch"), device=train["device"],
    )  # fmt: skip
    return row


def _stats(values: pd.Series) -> dict:
    values = values.dropna()
    return {
        "mean": round(float(values.mean()), 4) if len(values) else None,
        "std": round(float(values.std(ddof=1)), 4) if len(values) > 1 else None,
        "n": len(values),
    }


def _grouped(frame: pd.DataFrame, by: str, metric: str) -> dict:
    return {str(name): _stats(group[metric]) for name, group in frame.groupby(by, sort=False)}


def _paired_difference(frame: pd.DataFrame, axis: str, first: str, second: str, metric: str) -> dict:
    """Mean of (second - first) over models identical but for ``axis``."""
    keys = [name for name in ("experiment", "architecture", "encoder", "encoder_weights") if name != axis]
    wide = frame.pivot_table(index=keys, columns=axis, values=metric)
    if first not in wide or second not in wide:
        return {"mean": None, "n": 0, "wins": 0}
    difference = (wide[second] - wide[first]).dropna()
    return {**_stats(difference), "wins": int((difference > 0).sum())}


def paper_summary(reference_dir: Path) -> dict:
    path = reference_dir / "paper_summary_dice.csv"
    if not path.exists():
        return {}
    summary: dict = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            summary.setdefault(row["scope"], {})[row["experiment"]] = {
                "mean": float(row["mean_dice"]),
                "std": float(row["std_dice"]),
            }
    return summary


def findings(frame: pd.DataFrame, paper: dict[tuple, float], reference_dir: Path) -> dict:
    """The paper's findings recomputed by name, for each metric of FINDING_METRICS."""
    ok = frame[frame["status"] == "ok"]
    reported = paper_summary(reference_dir)
    result: dict = {
        # Results of different data sources never mix: say which one (and which profile) these are.
        "data_source": ", ".join(sorted(frame["data_source"].dropna().unique())),
        "profile": ", ".join(sorted(frame["profile"].dropna().unique())),
        "models": len(frame),
        "failed": int((frame["status"] != "ok").sum()),
        "paper": {
            "note": "the paper's Dice (percent) from its text; its summary means match the ImageNet half of Table II",
            "mean_dice_by_experiment": reported.get("all", {}),
            "mean_dice_by_architecture": {k: v for k, v in reported.items() if k != "all"},
            "best_reported_dice": {},
        },
    }
    for experiment in ok["experiment"].unique():
        rows = [(dice, key) for key, dice in paper.items() if key[0] == experiment]
        if rows:
            dice, key = max(rows)
            result["paper"]["best_reported_dice"][experiment] = {
                "id": "-".join(key),
                "dice": dice,
                "note": "among the rows of Table II that survive",
            }
    for metric in FINDING_METRICS:
        section: dict = {"best_model": {}, "by_experiment": {}, "by_architecture": {}, "by_encoder": {},
                         "imagenet_vs_random": {}, "lesion_b_vs_lesion_a": {}}  # fmt: skip
        for experiment, group in ok.groupby("experiment", sort=False):
            best = group.loc[group[metric].idxmax()] if group[metric].notna().any() else None
            if best is not None:
                section["best_model"][experiment] = {"id": best["id"], metric: round(float(best[metric]), 4)}
            section["by_experiment"][experiment] = _stats(group[metric])
            section["by_architecture"][experiment] = _grouped(group, "architecture", metric)
            section["by_encoder"][experiment] = _grouped(group, "encoder", metric)
            section["imagenet_vs_random"][experiment] = {
                **_grouped(group, "encoder_weights", metric),
                "imagenet_minus_random": _paired_difference(group, "encoder_weights", "random", "imagenet", metric),
            }
        section["lesion_b_vs_lesion_a"] = {
            **{name: _stats(ok[ok["experiment"] == name][metric]) for name in ("lesion_a", "lesion_b")},
            "lesion_b_minus_lesion_a": _paired_difference(ok, "experiment", "lesion_a", "lesion_b", metric),
        }
        result[metric] = section
    return result


def headline(frame: pd.DataFrame) -> dict:
    ok = frame[frame["status"] == "ok"]
    return {
        experiment: {
            "best_dice": round(float(group["dice"].max()), 4),
            "mean_dice": round(float(group["dice"].mean()), 4),
            "mean_paper_dice": round(float(group["paper_dice"].mean()), 2),
            "models": len(group),
        }
        for experiment, group in ok.groupby("experiment", sort=False)
    }


def _write_json(data: dict, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def aggregate(cells, models_dir: Path, evaluation_dir: Path, out_dir: Path, reference_dir: Path) -> pd.DataFrame:
    reported = paper_rows(reference_dir)
    paper = {key: row["dice"] for key, row in reported.items()}
    rows = []
    for cell in cells:
        train = read_train_record(models_dir / cell.id)
        evaluation = read_json(
            evaluation_dir / cell.id / "metrics.json", "evaluate the models first (`dvc repro evaluate`)"
        )
        row = model_row(train, evaluation, paper)
        rows.append(row)
        folder = out_dir / cell.id
        folder.mkdir()
        record = {**train, **evaluation, **{k: v for k, v in row.items() if v is not None}}
        _write_json({**record, **paper_reported(cell, reported)}, folder / "metrics.json")
        for name, source in (("history.csv", models_dir), ("volumes.csv", evaluation_dir)):
            if (source / cell.id / name).exists():
                shutil.copyfile(source / cell.id / name, folder / name)
    sources = sorted({row["data_source"] for row in rows})
    if len(sources) > 1:
        raise PipelineError(
            f"{models_dir}: the models were trained on different data sources ({', '.join(sources)}); "
            "one leaderboard never mixes them: retrain the stale ones (`dvc repro`)"
        )
    with open(out_dir / "leaderboard.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_format(row.get(name), decimals) for name, decimals in COLUMNS.items()])
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    _write_json(findings(frame, paper, reference_dir), out_dir / "summary.json")
    _write_json(headline(frame), out_dir / "headline.json")
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description="Aggregate training and evaluation records into results/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--evaluation", type=Path, default=EVALUATION_DIR)
    parser.add_argument("--reference", type=Path, default=REFERENCE_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args()
    grid = load_params(args.params).grid
    cells = grid.cells()
    with replace_directory(args.out) as staging:
        frame = aggregate(cells, args.models, args.evaluation, staging, args.reference)
    ok = frame[frame["status"] == "ok"]
    best = ok.loc[ok.groupby("experiment", sort=False)["dice"].idxmax()]
    print(f"aggregate: {len(frame)} models ({len(frame) - len(ok)} failed) -> {args.out / 'leaderboard.csv'}")
    for _, row in best.iterrows():
        print(f"  best {row['experiment']}: {row['id']} dice {row['dice']:.4f} "
              f"[{row['dice_ci_low']:.4f}, {row['dice_ci_high']:.4f}]")  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
