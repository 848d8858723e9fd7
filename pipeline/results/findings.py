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
  models identical but for that factor, with win counts and an exact two-sided sign test (scipy); an
  interval (Student's t over the pairs, which holds its level with few pairs where the percentile bootstrap
  does not) only from ``MIN_PAIRS`` pairs up; and how many pairs were lost because one of the two did not
  learn or failed (survivorship: dropping failures can flatter the architecture that fails more);
- **seed spread**: the sample standard deviation over training seeds with its chi-square interval (3 runs
  are 2 degrees of freedom: the interval spans a factor of about 12), and a gap called larger or smaller
  than retraining noise only when it lies outside that interval's noise band; "inconclusive" otherwise.
"""

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.evaluation.metrics import mean_interval

KEYS = ("experiment", "architecture", "encoder", "encoder_weights")
MIN_PAIRS = 5  # no interval is published from fewer pairs: the count and the wins say what there is
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


def paired_effect(frame: pd.DataFrame, axis: str, first: str, second: str, metric: str, confidence: float,
                  trained: pd.DataFrame | None = None) -> dict:  # fmt: skip
    """Mean of (second - first) over models identical but for ``axis`` (``frame``: the models that learned),
    with wins, losses, the exact two-sided sign-test p, a t interval over the pairs from ``MIN_PAIRS`` pairs
    up, and how many pairs of ``trained`` (every model, whatever its status) were lost to an exclusion."""
    paired = pairs(frame, axis, first, second, metric)
    lost = 0
    if trained is not None:
        both = pairs(trained.assign(_present=1.0), axis, first, second, "_present")
        lost = len(both) - len(paired)
    empty = {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "wins": 0, "losses": 0, "sign_p": None,
             "excluded_pairs": lost}  # fmt: skip
    if paired.empty:
        return empty
    difference = (paired[second] - paired[first]).to_numpy(dtype=float)
    wins, losses = int((difference > 0).sum()), int((difference < 0).sum())
    low, high = (None, None)
    if len(difference) >= MIN_PAIRS:
        low, high = mean_interval(difference, confidence, (-1.0, 1.0) if metric != "hd95" else (-np.inf, np.inf))
    sign_p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0
    return {
        **empty, "mean": round(float(difference.mean()), 4), "n": len(difference), "wins": wins, "losses": losses,
        "ci_low": None if low is None else round(low, 4), "ci_high": None if high is None else round(high, 4),
        "sign_p": round(sign_p, 4),
    }  # fmt: skip


def effects(ok: pd.DataFrame, architectures: list[str], metric: str, confidence: float,
            trained: pd.DataFrame | None = None) -> list[dict]:  # fmt: skip
    """Every paired effect the grid supports, one row each, for forest plots (``trained``: every model, to count
    the pairs an exclusion removed)."""
    rows = []
    for experiment, group in ok.groupby("experiment", sort=False):
        every = None if trained is None else trained[trained["experiment"] == experiment]
        effect = paired_effect(group, "encoder_weights", "random", "imagenet", metric, confidence, every)
        rows.append({"effect": INITIALISATION_EFFECT, "experiment": experiment, **effect})
        for first, second in combinations(architectures, 2):
            effect = paired_effect(group, "architecture", first, second, metric, confidence, every)
            rows.append({"effect": f"{second} - {first}", "experiment": experiment, **effect})
    effect = paired_effect(ok, "experiment", "lesion_a", "lesion_b", metric, confidence, trained)
    rows.append({"effect": LESION_EFFECT, "experiment": "lesion_a, lesion_b", **effect})
    return [row for row in rows if row["n"] or row["excluded_pairs"]]


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


def sd_interval(sd: float, runs: int, confidence: float) -> tuple[float | None, float | None]:
    """The chi-square interval of a standard deviation from ``runs`` values (runs - 1 degrees of freedom),
    assuming normal scatter: [s sqrt(k / chi2_hi), s sqrt(k / chi2_lo)]; None below 2 runs."""
    if runs < 2 or sd is None:
        return None, None
    k, tail = runs - 1, (1 - confidence) / 2
    return float(sd * np.sqrt(k / stats.chi2.ppf(1 - tail, k))), float(sd * np.sqrt(k / stats.chi2.ppf(tail, k)))


def seed_variance(board: pd.DataFrame, seeds: dict[str, list[float]], confidence: float = 0.95) -> dict:
    """Per experiment: the spread of Dice over training seeds where it was measured, and how the gaps between
    neighbours in the ranking compare with it.

    ``seeds`` maps a model id to the Dice of each of its runs (main and repeats). The pooled standard
    deviation s (root mean of the per-model sample variances, sum of (runs - 1) degrees of freedom) is the seed
    noise of one run, with its chi-square interval [s_lo, s_hi]; the difference of two independent runs has
    standard deviation s * sqrt(2), so its 95% range is 1.96 * sqrt(2) * s. A gap is *beyond* the noise when
    it exceeds that range even at s_hi, *within* it when it is below the range even at s_lo, and
    *inconclusive* in between: the data cannot tell.
    """
    out = {}
    ranked = board[board["status"] == "ok"].dropna(subset=["rank"]).sort_values(["experiment", "rank"])
    for experiment, group in ranked.groupby("experiment", sort=False):
        measured = [values for model, values in seeds.items() if model in set(group["id"]) and len(values) > 1]
        if not measured:
            out[experiment] = {"models": 0}
            continue
        freedom = int(sum(len(values) - 1 for values in measured))
        pooled = float(np.sqrt(sum(np.var(values, ddof=1) * (len(values) - 1) for values in measured) / freedom))
        low, high = sd_interval(pooled, freedom + 1, confidence)
        factor = 1.96 * np.sqrt(2)
        gaps = -np.diff(group["dice"].to_numpy(dtype=float))
        verdicts = ["beyond" if gap > factor * high else "within" if gap < factor * low else "inconclusive"
                    for gap in gaps]  # fmt: skip
        out[experiment] = {
            "models": len(measured), "runs": int(sum(len(values) for values in measured)),
            "degrees_of_freedom": freedom, "pooled_sd": round(pooled, 4), "pooled_sd_ci_low": round(low, 4),
            "pooled_sd_ci_high": round(high, 4), "noise_95": round(float(factor * pooled), 4),
            "noise_95_low": round(float(factor * low), 4), "noise_95_high": round(float(factor * high), 4),
            "top_gap": round(float(gaps[0]), 4) if len(gaps) else None,
            "top_gap_verdict": verdicts[0] if verdicts else None, "adjacent_gaps": len(gaps),
            **{f"gaps_{verdict}": verdicts.count(verdict) for verdict in ("beyond", "within", "inconclusive")},
        }  # fmt: skip
    return out
