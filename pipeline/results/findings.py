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
  An effect is called ``better`` or ``worse`` only when its interval lies wholly beyond the minimal relevant
  difference (params ``ranking.relevant_difference``), else "no relevant difference shown";
- **seed spread**: the sample standard deviation over training seeds with its chi-square interval (3 runs
  are 2 degrees of freedom: the interval runs from 0.52 s to 6.3 s, a factor of 12.1), given only
  where every run of the model learned; each gap between neighbours of the checkpoint ranking is judged from
  the two models' own seed runs (Welch's t test, no pooling of variances that differ many-fold between
  models): "beyond training noise" when p < 1 - confidence, else "not distinguishable from training noise"
  (a failure to separate, not evidence that the order would flip), "not measured" without seed runs of both;
- **small samples**: Spearman's p by exact permutation where n! is small (``EXACT_PERMUTATIONS``), HD95's
  median with a distribution-free interval from order statistics (``median_interval``).
"""

import math
from itertools import combinations, pairwise

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.evaluation.metrics import mean_interval
from pipeline.results.recipes import welch_p

KEYS = ("experiment", "architecture", "encoder", "encoder_weights")
MIN_PAIRS = 5  # no interval is published from fewer pairs (or volumes): the count and the wins say what there is
EXACT_PERMUTATIONS = 362_880  # 9!: Spearman's p by enumerating every pairing up to 9 models
SEED_VERDICTS = ("beyond training noise", "not distinguishable from training noise", "not measured")
NO_RELEVANT = "no relevant difference shown"
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


def relevance_verdict(low: float | None, high: float | None, margin: float, higher_better: bool = True) -> str:
    """``better``/``worse`` only when the whole interval of (second - first) lies beyond +-``margin``."""
    if low is None or high is None:
        return "too few pairs for an interval"
    if low > margin:
        return "better" if higher_better else "worse"
    if high < -margin:
        return "worse" if higher_better else "better"
    return NO_RELEVANT


def paired_effect(frame: pd.DataFrame, axis: str, first: str, second: str, metric: str, confidence: float,
                  trained: pd.DataFrame | None = None, margin: float = 0.01) -> dict:  # fmt: skip
    """Mean of (second - first) over models identical but for ``axis`` (``frame``: the models that learned),
    with wins, losses, the exact two-sided sign-test p, a t interval over the pairs from ``MIN_PAIRS`` pairs
    up, and how many pairs of ``trained`` (every model, whatever its status) were lost to an exclusion."""
    paired = pairs(frame, axis, first, second, metric)
    lost = 0
    if trained is not None:
        both = pairs(trained.assign(_present=1.0), axis, first, second, "_present")
        lost = len(both) - len(paired)
    empty = {"mean": None, "ci_low": None, "ci_high": None, "n": 0, "wins": 0, "losses": 0, "sign_p": None,
             "excluded_pairs": lost, "verdict": relevance_verdict(None, None, margin)}  # fmt: skip
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
        "sign_p": round(sign_p, 4), "verdict": relevance_verdict(low, high, margin, metric != "hd95"),
    }  # fmt: skip


def effects(ok: pd.DataFrame, architectures: list[str], metric: str, confidence: float,
            trained: pd.DataFrame | None = None, margin: float = 0.01) -> list[dict]:  # fmt: skip
    """Every paired effect the grid supports, one row each, for forest plots (``trained``: every model, to count
    the pairs an exclusion removed)."""
    rows = []
    for experiment, group in ok.groupby("experiment", sort=False):
        every = None if trained is None else trained[trained["experiment"] == experiment]
        effect = paired_effect(group, "encoder_weights", "random", "imagenet", metric, confidence, every, margin)
        rows.append({"effect": INITIALISATION_EFFECT, "experiment": experiment, **effect})
        for first, second in combinations(architectures, 2):
            effect = paired_effect(group, "architecture", first, second, metric, confidence, every, margin)
            rows.append({"effect": f"{second} - {first}", "experiment": experiment, **effect})
    effect = paired_effect(ok, "experiment", "lesion_a", "lesion_b", metric, confidence, trained, margin)
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


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float, str]:
    """(rho, two-sided p, how p was found): by enumerating every pairing up to 9 values (4 points with rho 1
    give p = 2/24 = 0.083, where the t approximation says 0.000), else by 9,999 random permutations."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = float(stats.spearmanr(x, y).statistic)
    exact = math.factorial(len(x)) <= EXACT_PERMUTATIONS
    # Spearman's rho is Pearson's r of the ranks, and a pairing only reorders x's ranks: rank once, then
    # correlate every permutation at once (scipy calling spearmanr per permutation took 15 s for 9 models).
    y_centred = stats.rankdata(y) - stats.rankdata(y).mean()

    def rank_correlation(ranks: np.ndarray, axis: int = -1) -> np.ndarray:
        centred = np.moveaxis(ranks, axis, -1) - np.mean(ranks, axis=axis)[..., None]
        return (centred @ y_centred) / np.sqrt((centred**2).sum(-1) * (y_centred @ y_centred))

    test = stats.permutation_test((stats.rankdata(x),), rank_correlation, permutation_type="pairings",
                                  n_resamples=EXACT_PERMUTATIONS if exact else 9_999, vectorized=True,
                                  random_state=0)  # fmt: skip
    return rho, float(test.pvalue), "exact" if exact else "9,999 permutations"


def size_correlation(ok: pd.DataFrame) -> list[dict]:
    """Per experiment: Spearman's rank correlation of parameter count and Dice over the models that learned
    (the paper's Fig. 4 claim), where there are at least 3 models of different sizes and Dice."""
    rows = []
    for experiment, group in ok.groupby("experiment", sort=False):
        if len(group) >= 3 and group["params_m"].nunique() > 1 and group["dice"].nunique() > 1:
            rho, p, method = spearman(group["params_m"], group["dice"])
            rows.append({"experiment": experiment, "rho": round(rho, 4), "p": round(p, 4), "p_method": method,
                         "n": len(group)})  # fmt: skip
    return rows


def median_interval(values, confidence: float) -> tuple[float | None, float | None, float | None]:
    """(low, high, coverage): the distribution-free interval of a median from order statistics, [X(j),
    X(n+1-j)] with the largest j whose binomial coverage 1 - 2 P(B <= j - 1), B ~ Bin(n, 1/2), reaches
    ``confidence`` (9 values: [X(2), X(8)], 96.1%); None where n is too small to reach it (n < 6 at 95%)."""
    values = np.sort(np.asarray(values, dtype=float)[~np.isnan(np.asarray(values, dtype=float))])
    n = len(values)
    best = None
    for j in range(1, n // 2 + 1):
        coverage = 1 - 2 * stats.binom.cdf(j - 1, n, 0.5)
        if coverage >= confidence - 1e-12:
            best = (float(values[j - 1]), float(values[n - j]), float(coverage))
    return best if best else (None, None, None)


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
    """Per experiment: the spread of Dice over training seeds where it was measured, and each gap between
    neighbours of the checkpoint ranking judged from the two models' own seed runs.

    ``seeds`` maps a model id to the Dice of each of its runs (main and repeats). A gap is "beyond training
    noise" when Welch's two-sided t test on the two models' runs gives p < 1 - ``confidence``, "not
    distinguishable from training noise" otherwise, and "not measured" where either model has fewer than two
    runs. No pooled SD: seed SDs differ many-fold between models (the smallest and largest are reported)."""
    out = {}
    alpha = 1 - confidence
    ranked = board[board["status"] == "ok"].dropna(subset=["rank"]).sort_values(["experiment", "rank"])
    for experiment, group in ranked.groupby("experiment", sort=False):
        ids = list(group["id"])
        measured = {model: np.asarray(seeds[model], dtype=float) for model in ids if len(seeds.get(model, [])) > 1}
        if not measured:
            out[experiment] = {"models": 0}
            continue
        verdicts, gaps = [], -np.diff(group["dice"].to_numpy(dtype=float))
        for first, second in pairwise(ids):
            if first in measured and second in measured:
                p = welch_p(measured[first], measured[second])
                verdicts.append(SEED_VERDICTS[0] if p < alpha else SEED_VERDICTS[1])
            else:
                verdicts.append(SEED_VERDICTS[2])
        sds = [float(np.std(values, ddof=1)) for values in measured.values()]
        out[experiment] = {
            "models": len(measured), "runs": int(sum(len(values) for values in measured.values())),
            "sd_min": round(min(sds), 4), "sd_max": round(max(sds), 4),
            "top_gap": round(float(gaps[0]), 4) if len(gaps) else None,
            "top_gap_verdict": verdicts[0] if verdicts else None, "adjacent_gaps": len(gaps),
            "gaps_beyond": verdicts.count(SEED_VERDICTS[0]),
            "gaps_not_distinguishable": verdicts.count(SEED_VERDICTS[1]),
            "gaps_not_measured": verdicts.count(SEED_VERDICTS[2]),
        }  # fmt: skip
    return out
