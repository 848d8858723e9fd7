"""The paper's own numbers (reference/): Table II where it survives, its summary statistics, its stated best."""

import csv
from pathlib import Path

from pipeline.core.experiments import NAMES as EXPERIMENTS


def _read_csv(path: Path, key: str) -> dict[str, dict]:
    """The rows of a reference CSV by the value of their ``key`` column; nothing when the file is absent."""
    if not path.exists():
        return {}
    with open(path) as handle:
        return {row[key]: row for row in csv.DictReader(handle)}


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


def paper_summary(reference_dir: Path) -> dict:
    """The paper's text: mean +/- std Dice per experiment ("all") and per architecture, percent."""
    path = reference_dir / "paper_summary_dice.csv"
    summary: dict = {}
    if path.exists():
        with open(path) as handle:
            for row in csv.DictReader(handle):
                summary.setdefault(row["scope"], {})[row["experiment"]] = {
                    "mean": float(row["mean_dice"]), "std": float(row["std_dice"])
                }  # fmt: skip
    return summary


def paper_best(reference_dir: Path, table: dict) -> dict:
    """Per experiment: the best Dice the paper's text states, and, labelled as such, the best surviving row
    of its Table II (the table is cut off: the two need not agree)."""
    stated = _read_csv(reference_dir / "paper_best_dice.csv", "experiment")
    out = {}
    for experiment in EXPERIMENTS:
        rows = [(dice["dice"], key) for key, dice in table.items() if key[0] == experiment]
        entry: dict = {}
        if experiment in stated:
            row = stated[experiment]
            entry["stated"] = {"dice": float(row["dice"]), "model": row["model_as_stated"], "source": row["source"]}
        if rows:
            dice, key = max(rows)
            entry["best_table_row"] = {"dice": dice, "id": "-".join(key),
                                       "note": "the best of the rows of Table II that survive"}  # fmt: skip
        if entry:
            out[experiment] = entry
    return out
