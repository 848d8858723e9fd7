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


def paper_best(reference_dir: Path, table: dict, checks: list[dict] = ()) -> dict:
    """Per experiment: the best Dice the paper's text states, and, labelled as such, the best surviving row
    of its Table II (the table is cut off: the two need not agree), flagged when ``checks`` (``table_check``)
    found that row to be a probable typo."""
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
            for check in checks:
                typo = check.get("probable_typo")
                if typo and (check["experiment"], check["architecture"], typo["encoder"], "imagenet") == key:
                    entry["best_table_row"]["probable_typo"] = typo
        if entry:
            out[experiment] = entry
    return out


def _statistic(values: list[float]) -> tuple[float, float]:
    """The paper's summary statistic: mean and population standard deviation, rounded as it prints them."""
    array = [float(v) for v in values]
    mean = sum(array) / len(array)
    return round(mean, 2), round((sum((v - mean) ** 2 for v in array) / len(array)) ** 0.5, 2)


def table_check(reference_dir: Path) -> list[dict]:
    """The paper's statistic recomputed from the surviving Table II rows of each complete (experiment,
    architecture) group of ImageNet models, against the mean and std its text states. Where they disagree,
    the one row whose replacement by some value makes both agree, if there is exactly one: a probable typo,
    with the value that reproduces the text (derived here, never typed in)."""
    table, stated = paper_rows(reference_dir), paper_summary(reference_dir)
    best = _read_csv(reference_dir / "paper_best_dice.csv", "experiment")
    groups: dict = {}
    for (experiment, architecture, encoder, weights), row in table.items():
        if weights == "imagenet":
            groups.setdefault((experiment, architecture), {})[encoder] = row["dice"]
    out = []
    for (experiment, architecture), rows in sorted(groups.items()):
        text = stated.get(architecture, {}).get(experiment)
        if text is None or len(rows) != 25:  # only whole groups: a cut-off group says nothing
            continue
        computed = _statistic(list(rows.values()))
        entry = {"experiment": experiment, "architecture": architecture, "n": len(rows),
                 "stated": {"mean": text["mean"], "std": text["std"]},
                 "computed": {"mean": computed[0], "std": computed[1]}, "agrees": computed == (text["mean"],
                                                                                              text["std"])}  # fmt: skip
        if not entry["agrees"]:
            candidates = _row_fixes(rows, text["mean"], text["std"])
            entry["candidates"] = candidates
            entry["probable_typo"] = _probable(candidates, best.get(experiment))
        out.append(entry)
    return out


def _probable(candidates: list[dict], stated_best: dict | None) -> dict | None:
    """The one candidate row, or, when the rounding leaves several, the one whose printed value exceeds the
    best Dice the text states although a value its text implies would not: only that fix reconciles the
    summary and the stated best at once."""
    if len(candidates) == 1:
        return candidates[0]
    if stated_best is None:
        return None
    best = float(stated_best["dice"])
    contradicting = [c for c in candidates if c["table"] > best + ROUNDING and c["implied_low"] <= best + ROUNDING]
    if len(contradicting) != 1:
        return None
    return {**contradicting[0], "why": f"it alone exceeds the best Dice the text states ({best:.2f})"}


ROUNDING = 0.005  # every value the paper prints is rounded to 2 decimals


def _row_fixes(rows: dict[str, float], mean: float, std: float) -> list[dict]:
    """Every row whose replacement makes the group give both the stated mean and std. A replacement value (2
    decimals) is implied when some true values of the *other* rows,
    each within the ``ROUNDING`` of its printed value, make the mean and population std round to the stated
    ones: the printed rows are rounded too, which a range computed from them as exact would ignore. The other
    rows' true values are searched along a shift of all of them and a stretch about their mean, both within
    the rounding, which moves the mean and the std each way."""
    import numpy as np

    fixes = []
    count = len(rows)
    shifts = np.linspace(-ROUNDING, ROUNDING, 21)
    stretches = np.linspace(-4 * ROUNDING, 4 * ROUNDING, 41)
    for encoder, value in rows.items():
        others = np.array([v for e, v in rows.items() if e != encoder], dtype=float)
        slack = ROUNDING * (count - 1) + ROUNDING * count
        low, high = mean * count - others.sum() - slack, mean * count - others.sum() + slack
        candidates = np.round(np.arange(np.floor(low * 100), np.ceil(high * 100) + 1) / 100, 2)
        deviation = others - others.mean()
        moves = np.clip(shifts[:, None, None] + stretches[None, :, None] * deviation, -ROUNDING, ROUNDING)
        true_others = (others + moves).reshape(-1, count - 1)  # (shift x stretch, others)
        implied = []
        for x in candidates:
            values = np.concatenate([true_others, np.full((len(true_others), 1), x)], axis=1)
            means, stds = values.mean(axis=1), values.std(axis=1)
            if np.any((np.round(means, 2) == mean) & (np.round(stds, 2) == std)):
                implied.append(float(x))
        if implied and not (min(implied) <= value <= max(implied)):
            fixes.append({"encoder": encoder, "table": value, "implied_low": min(implied),
                          "implied_high": max(implied)})  # fmt: skip
    return fixes
