"""The paper's findings recomputed, saying what the evidence supports: pure functions on the leaderboard.

Every statistic says what it is:

- **ours**: the correct Dice (per volume in native geometry, [0, 1]) of the models that learned (status
  ``ok``; failed and degenerate runs are excluded and counted), as mean, *sample* standard deviation
  (ddof 1), median and n;
- **the paper's statistic**: what the paper's summary means are (its text, Section V), i.e. the
  paper-compatible Dice in percent of the **ImageNet** models only, with the **population** standard
  deviation (ddof 0), set beside the paper's own numbers: applied to the paper's own Table II this
  statistic gives back the paper's means (Unet, lesion A: 85.84 +- 0.64);
- **paired effects** (ImageNet - random, lesion B - A, one architecture - another): mean differences over
  models identical but for that factor, with a percentile bootstrap interval over the pairs and win counts.
"""

from itertools import combinations

import numpy as np
import pandas as pd

from pipeline.evaluation.metrics import bootstrap_interval

KEYS = ("experiment", "architecture", "encoder", "encoder_weights")
# The names of the effects that are not one architecture against another (the site picks them by name).
INITIALISATION_EFFECT = "ImageNet - random"
LESION_EFFECT = "lesion B - lesion A"


def sample_stats(values: pd.Series) -> dict:
    """Mean, sample standard deviation (ddof 1), median and n of the defined values."""
    values = values.dropna().astype(float)
    n = len(values)
    return {
        "mean": round(float(values.mean()), 4) if n else None,
        "std": round(float(values.std(ddof=1)), 4) if n > 1 else None,
        "median": round(float(values.median()), 4) if n else None,
        "n": n,
    }


def paper_statistic(values: pd.Series) -> dict:
    """The paper's summary statistic: mean and population standard deviation (ddof 0), in percent."""
    values = values.dropna().astype(float)
    return {
        "mean": round(float(values.mean()), 2) if len(values) else None,
        "std": round(float(values.std(ddof=0)), 2) if len(values) else None,
        "n": len(values),
    }


def grouped(frame: pd.DataFrame, by: str, metric: str) -> dict:
    return {str(name): sample_stats(group[metric]) for name, group in frame.groupby(by, sort=False)}


def pairs(frame: pd.DataFrame, axis: str, first: str, second: str, metric: str) -> pd.DataFrame:
    """The models identical but for ``axis``, one row per pair: the other keys, then ``metric`` of the model with
    ``first`` and of the one with ``second`` (columns named by those values)."""
    keys = [name for name in KEYS if name != axis]
    wide = frame.pivot_table(index=keys, columns=axis, values=metric)
    if first not in wide or second not in wide:
        return pd.DataFrame(columns=[*keys, first, second])
    return wide[[first, second]].dropna().reset_index().rename_axis(columns=None)


def paired_effect(frame: pd.DataFrame, axis: str, first: str, second: str, metric: str, settings: tuple) -> dict:
    """Mean of (second - first) over models identical but for ``axis``, with a bootstrap interval over the
    pairs (``settings``: samples, confidence, seed) and how often second is better."""
    paired = pairs(frame, axis, first, second, metric)
    if paired.empty:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "wins": 0, "losses": 0}
    difference = (paired[second] - paired[first]).to_numpy()
    low, high = bootstrap_interval(difference, *settings) if len(difference) > 1 else (None, None)
    return {
        "mean": round(float(difference.mean()), 4) if len(difference) else None,
        "ci_low": None if low is None else round(low, 4),
        "ci_high": None if high is None else round(high, 4),
        "n": len(difference),
        "wins": int((difference > 0).sum()),
        "losses": int((difference < 0).sum()),
    }


def effects(ok: pd.DataFrame, architectures: list[str], metric: str, settings: tuple) -> list[dict]:
    """Every paired effect the grid supports, one row each, for forest plots."""
    rows = []
    for experiment, group in ok.groupby("experiment", sort=False):
        effect = paired_effect(group, "encoder_weights", "random", "imagenet", metric, settings)
        rows.append({"effect": INITIALISATION_EFFECT, "experiment": experiment, **effect})
        for first, second in combinations(architectures, 2):
            effect = paired_effect(group, "architecture", first, second, metric, settings)
            rows.append({"effect": f"{second} - {first}", "experiment": experiment, **effect})
    effect = paired_effect(ok, "experiment", "lesion_a", "lesion_b", metric, settings)
    rows.append({"effect": LESION_EFFECT, "experiment": "lesion_a, lesion_b", **effect})
    return [row for row in rows if row["n"]]


def paired_rows(ok: pd.DataFrame) -> dict:
    """The pairs the comparison pages draw (Dice of each side): same model with either initialisation, and the
    same model on lesion A and lesion B."""
    init = pairs(ok, "encoder_weights", "random", "imagenet", "dice")
    lesions = pairs(ok, "experiment", "lesion_a", "lesion_b", "dice")
    return {"initialisation": _rounded_records(init), "lesions": _rounded_records(lesions)}


def _rounded_records(frame: pd.DataFrame) -> list[dict]:
    return [{k: round(float(v), 4) if isinstance(v, float) else v for k, v in row.items()}
            for row in frame.to_dict("records")]  # fmt: skip


def size_correlation(ok: pd.DataFrame) -> list[dict]:
    """Per experiment: Spearman's rank correlation of parameter count and Dice over the models that learned
    (the paper's Fig. 4 claim), where there are at least 3 models of different sizes and Dice."""
    from scipy import stats

    rows = []
    for experiment, group in ok.groupby("experiment", sort=False):
        if len(group) >= 3 and group["params_m"].nunique() > 1 and group["dice"].nunique() > 1:
            test = stats.spearmanr(group["params_m"], group["dice"])
            rows.append({"experiment": experiment, "rho": round(float(test.statistic), 4),
                         "p": round(float(test.pvalue), 4), "n": len(group)})  # fmt: skip
    return rows


def best_and_worst(ok: pd.DataFrame, architectures: list[str]) -> list[dict]:
    """Per experiment and architecture with two or more models, the encoders with the highest and lowest Dice
    (among random initialisation where there is one), as the paper's Fig. 3 shows them."""
    if "random" in set(ok["encoder_weights"]):
        ok = ok[ok["encoder_weights"] == "random"]
    out = []
    for experiment, group in ok.groupby("experiment", sort=False):
        for architecture in architectures:
            models = group[group["architecture"] == architecture]
            if len(models) < 2:
                continue
            best, worst = models.loc[models["dice"].idxmax()], models.loc[models["dice"].idxmin()]
            out.append({"experiment": experiment, "architecture": architecture,
                        **{side: {"id": row["id"], "encoder": row["encoder"], "dice": round(float(row["dice"]), 4)}
                           for side, row in (("best", best), ("worst", worst))}})  # fmt: skip
    return out


def section(ok: pd.DataFrame, metric: str) -> dict:
    """Our statistics of one metric: per experiment, architecture, encoder and initialisation."""
    out: dict = {"by_experiment": {}, "by_architecture": {}, "by_encoder": {}, "by_initialisation": {}}
    for experiment, group in ok.groupby("experiment", sort=False):
        out["by_experiment"][experiment] = sample_stats(group[metric])
        out["by_architecture"][experiment] = grouped(group, "architecture", metric)
        out["by_encoder"][experiment] = grouped(group, "encoder", metric)
        out["by_initialisation"][experiment] = grouped(group, "encoder_weights", metric)
    return out


def paper_comparison(ok: pd.DataFrame, reported: dict, experiments: list[str]) -> dict:
    """Per experiment (and per architecture): the paper's statistic on our paper-compatible Dice of the
    ImageNet models, beside the paper's own mean and std (None where the paper states none)."""
    imagenet = ok[ok["encoder_weights"] == "imagenet"]
    out = {}
    for experiment in experiments:
        rows = imagenet[imagenet["experiment"] == experiment]
        by_architecture = {}
        for architecture in dict.fromkeys(ok.loc[ok["experiment"] == experiment, "architecture"]):
            values = rows.loc[rows["architecture"] == architecture, "paper_dice"]
            by_architecture[architecture] = {
                "ours": paper_statistic(values),
                "paper": reported.get(architecture, {}).get(experiment),
            }
        out[experiment] = {
            "all": {"ours": paper_statistic(rows["paper_dice"]), "paper": reported.get("all", {}).get(experiment)},
            "by_architecture": by_architecture,
        }
    return out


def seed_variance(board: pd.DataFrame, seeds: dict[str, list[float]]) -> dict:
    """Per experiment: the spread of Dice over training seeds where it was measured, and whether the gaps
    between neighbours in the ranking exceed it.

    ``seeds`` maps a model id to the Dice of each of its runs (main and repeats). The pooled standard
    deviation s (root mean of the per-model sample variances) is the seed noise of one run; the difference
    of two independent runs then has standard deviation s * sqrt(2), so a gap under 1.96 * sqrt(2) * s (its
    95% range) is within what retraining with another seed could produce.
    """
    out = {}
    ranked = board[board["status"] == "ok"].dropna(subset=["rank"]).sort_values(["experiment", "rank"])
    for experiment, group in ranked.groupby("experiment", sort=False):
        measured = [values for model, values in seeds.items() if model in set(group["id"]) and len(values) > 1]
        if not measured:
            out[experiment] = {"models": 0}
            continue
        pooled = float(np.sqrt(np.mean([np.var(values, ddof=1) for values in measured])))
        noise = 1.96 * np.sqrt(2) * pooled
        gaps = -np.diff(group["dice"].to_numpy(dtype=float))
        out[experiment] = {
            "models": len(measured),
            "runs": int(sum(len(values) for values in measured)),
            "pooled_sd": round(pooled, 4),
            "noise_95": round(float(noise), 4),
            "top_gap": round(float(gaps[0]), 4) if len(gaps) else None,
            "top_gap_beyond_noise": bool(len(gaps) and gaps[0] > noise),
            "adjacent_gaps": len(gaps),
            "gaps_beyond_noise": int((gaps > noise).sum()),
        }
    return out
