"""How sure a ranking of the released checkpoints is: rank intervals over the test cases, tiers from a corrected
exact test, and the stability of the order.

The anchor is challengeR (Wiesenfarth et al., Sci Rep 2021). Input: one score per (model, test case) in a
models x cases matrix, for these checkpoints: the uncertainty here is the test set's, not training's (for
recipes over seeds see pipeline.results.recipes).

- **Rank distribution**: the test cases are resampled with replacement, the same cases for every model, and
  the models ranked by their mean over the resample (ties share the best rank). With 9 cases there are only
  24,310 distinct resamples (multisets), so where ranking every one of them stays cheap (``EXACT_BUDGET``
  model-resamples: up to 82 models with 9 cases) they are **enumerated exactly**, each weighted by its
  multinomial probability: no Monte Carlo error at all. Otherwise ``max(draws, 10,000)`` random draws stand
  in, and P(rank 1) is rounded to the precision their error allows. Per model: median
  rank, a ``confidence`` rank interval, P(rank 1), and the whole distribution (the blob plot).
- **Tiers** (challengeR's significance rule): tier 1 is the leader (rank 1 on all cases) and every model
  that an exact one-sided Wilcoxon signed-rank test over the cases (scipy, zero differences dropped) does not
  find worse than the leader at ``alpha`` after Holm's correction over the comparisons with that leader
  (statsmodels); among the rest the best leads tier 2, and so on.
- **Significance map**: every ordered pair of the top models, the same test, Holm over all pairs shown.
- **Stability**: Kendall's tau of the resampled rankings against the full one, its distribution estimated
  from ``TAU_SAMPLE`` resamples drawn with their probabilities.

With 9 cases an exact one-sided Wilcoxon p cannot go below 1/512, so after Holm over m comparisons nothing
with m > 25 is separable: tiers are wide by construction, and say so. ``python -m benchmarks.ranking`` times
3 x 200 models.
"""

import math
from dataclasses import dataclass
from functools import cache
from itertools import combinations_with_replacement

import numpy as np
from scipy import stats

EXACT_BUDGET = 2_000_000  # models x distinct resamples ranked exactly (9 cases: 24,310 resamples)
MIN_DRAWS = 10_000  # random draws when that is more
TAU_SAMPLE = 1_000
ALPHA = 0.05
# The metrics models are ranked by, and whether higher is better.
RANKED = {"dice": True, "nsd": True, "hd95": False}


@dataclass(frozen=True)
class Resamples:
    """Resamples of ``cases`` test cases: how often each case is drawn, and each resample's probability."""

    counts: np.ndarray  # (resamples, cases) integers summing to cases
    weights: np.ndarray  # (resamples,) probabilities summing to 1
    exact: bool  # every distinct resample, with its probability; else equally weighted random draws


def resamples(cases: int, draws: int, seed: int, models: int = 1) -> Resamples:
    """Every distinct resample with its probability when ``models`` x their number fits ``EXACT_BUDGET``, else
    ``max(draws, MIN_DRAWS)`` random ones."""
    if models * math.comb(2 * cases - 1, cases) <= EXACT_BUDGET:
        return _every_resample(cases)
    draws = max(draws, MIN_DRAWS)
    index = np.random.default_rng(seed).integers(0, cases, size=(draws, cases))
    counts = np.stack([np.bincount(row, minlength=cases) for row in index])
    return Resamples(counts, np.full(draws, 1 / draws), False)


@cache
def _every_resample(cases: int) -> Resamples:
    counts = np.array([np.bincount(multiset, minlength=cases)
                       for multiset in combinations_with_replacement(range(cases), cases)])  # fmt: skip
    # The probability of drawing a multiset: cases! / prod(count!) orderings, each of probability cases^-cases.
    log_factorials = np.array([math.lgamma(c + 1) for c in range(cases + 1)])
    log_weights = math.lgamma(cases + 1) - log_factorials[counts].sum(axis=1) - cases * math.log(cases)
    weights = np.exp(log_weights)
    return Resamples(counts, weights / weights.sum(), True)


def p_rank1_decimals(sampled: Resamples) -> int:
    """Decimals P(rank 1) is published with: 3 when exact; else as many as twice the largest Monte Carlo
    standard error (0.5 / sqrt(draws)) allows."""
    if sampled.exact:
        return 3
    return max(0, math.floor(-math.log10(2 * 0.5 / math.sqrt(len(sampled.weights)))))


def one_sided_p(better: np.ndarray, worse: np.ndarray, higher_better: bool) -> np.ndarray:
    """Exact one-sided Wilcoxon signed-rank p-values that ``better`` (cases,) beats each row of ``worse``
    (models, cases) on the paired cases; zero differences are dropped, all-zero rows give 1."""
    difference = (better - worse) if higher_better else (worse - better)
    difference = np.atleast_2d(difference)
    return stats.wilcoxon(difference, axis=1, alternative="greater", method="exact", zero_method="wilcox").pvalue


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels)."""
    import gc

    from statsmodels.stats.multitest import multipletests

    if len(p_values) == 0:
        return np.asarray(p_values, dtype=float)
    # statsmodels' Holm branch calls gc.collect() every time: with the heap frozen (set aside from collection)
    # that costs nothing, where a large process would pay tens of milliseconds per call.
    gc.freeze()
    try:
        return multipletests(p_values, alpha=ALPHA, method="holm")[1]
    finally:
        gc.unfreeze()


def tiers(scores: np.ndarray, means: np.ndarray, higher_better: bool, alpha: float = ALPHA) -> tuple:
    """(tier of each model, its Holm-adjusted p).

    challengeR's significance rule: tier 1 is the leader and every model that the exact one-sided Wilcoxon test
    does not find worse than the leader at ``alpha``, Holm-adjusted over the comparisons with that leader; the
    next tier is built the same way among the rest. A model's p is that of its last comparison: against the
    leader of its own tier (>= alpha), or, for the leader of tier 2 and below, against the leader of the tier
    above (< alpha: why it was separated). NaN for the overall leader."""
    order = np.argsort(-means if higher_better else means, kind="stable")
    tier = np.zeros(len(means), dtype=int)
    adjusted = np.full(len(means), np.nan)
    level = 0
    while (tier == 0).any():
        level += 1
        left = [i for i in order if tier[i] == 0]
        leader, others = left[0], np.array(left[1:], dtype=int)
        tier[leader] = level
        if len(others):
            p = holm(one_sided_p(scores[leader], scores[others], higher_better))
            adjusted[others] = p
            tier[others[p >= alpha]] = level  # not found worse than this tier's leader
    return tier, adjusted


def significance_map(ids: list[str], scores: np.ndarray, higher_better: bool) -> dict:
    """p[i][j]: Holm-adjusted (over every ordered pair shown) exact one-sided Wilcoxon p that model i beats j;
    None on the diagonal."""
    count = len(ids)
    raw = np.full((count, count), np.nan)
    for i in range(count):
        others = [j for j in range(count) if j != i]
        if others:
            raw[i, others] = one_sided_p(scores[i], scores[others], higher_better)
    off_diagonal = ~np.eye(count, dtype=bool)
    adjusted = np.full((count, count), np.nan)
    adjusted[off_diagonal] = holm(raw[off_diagonal])
    matrix = [[None if i == j else round(float(adjusted[i, j]), 4) for j in range(count)] for i in range(count)]
    return {"ids": list(ids), "p": matrix, "alpha": ALPHA, "comparisons": int(off_diagonal.sum())}


def _weighted_quantiles(frequencies: np.ndarray, q: float) -> np.ndarray:
    """Per model (row), the smallest rank whose cumulative probability reaches q (an observed rank)."""
    cumulative = np.cumsum(frequencies, axis=1)
    return np.argmax(cumulative >= q - 1e-12, axis=1) + 1


@dataclass(frozen=True)
class Ranking:
    ids: list[str]
    rank: np.ndarray  # on all cases (1 = best; ties share the best rank)
    rank_median: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    p_rank1: np.ndarray
    p_decimals: int
    tier: np.ndarray
    tier_p: np.ndarray  # Holm-adjusted p of the model's last tier comparison (see tiers); NaN for the leader
    frequencies: np.ndarray  # models x ranks: the probability of each rank (column r: rank r + 1)
    tau_median: float
    tau_low: float
    tau_high: float
    resamples: int
    exact: bool
    cases: int

    def rows(self) -> list[dict]:
        return [
            {"id": model, "rank": int(self.rank[i]), "rank_median": int(self.rank_median[i]),
             "rank_low": int(self.rank_low[i]), "rank_high": int(self.rank_high[i]),
             "p_rank1": round(float(self.p_rank1[i]), self.p_decimals), "tier": int(self.tier[i]),
             "tier_p": None if np.isnan(self.tier_p[i]) else round(float(self.tier_p[i]), 4)}
            for i, model in enumerate(self.ids)
        ]  # fmt: skip

    def blobs(self, top: int) -> list[dict]:
        """Blob-plot data of the ``top`` models of the full ranking: each rank a model took, and how often."""
        order = np.argsort(self.rank, kind="stable")[:top]
        return [
            {"id": self.ids[i], "rank": int(self.rank[i]), "rank_median": int(self.rank_median[i]),
             "rank_low": int(self.rank_low[i]), "rank_high": int(self.rank_high[i]),
             "ranks": {str(r + 1): round(float(f), 4) for r, f in enumerate(self.frequencies[i]) if f >= 5e-5}}
            for i in order
        ]  # fmt: skip


def bootstrap_ranking(
    ids: list[str], scores: np.ndarray, higher_better: bool, draws: int, confidence: float, seed: int
) -> Ranking:
    """Rank uncertainty and tiers of ``scores`` (models x cases, no NaN) of these checkpoints."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(ids) or scores.shape[1] == 0:
        raise ValueError(f"need a models x cases matrix for {len(ids)} models, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores must be defined for every model and case")
    models, cases = scores.shape
    sign = -1.0 if higher_better else 1.0
    sampled = resamples(cases, draws, seed, models)
    means = scores @ sampled.counts.T / cases  # models x resamples, the same cases for every model
    ranks = stats.rankdata(sign * means, axis=0, method="min").astype(int)
    full_means = scores.mean(axis=1)
    full = stats.rankdata(sign * full_means, method="min").astype(int)
    frequencies = np.zeros((models, models))
    for model in range(models):
        frequencies[model] = np.bincount(ranks[model] - 1, weights=sampled.weights, minlength=models)
    tail = (1 - confidence) / 2
    tier, tier_p = tiers(scores, full_means, higher_better)
    taus = _taus(full, ranks, sampled, seed)
    return Ranking(
        ids=list(ids), rank=full, rank_median=_weighted_quantiles(frequencies, 0.5),
        rank_low=_weighted_quantiles(frequencies, tail), rank_high=_weighted_quantiles(frequencies, 1 - tail),
        p_rank1=frequencies[:, 0], p_decimals=p_rank1_decimals(sampled), tier=tier, tier_p=tier_p,
        frequencies=frequencies, tau_median=float(np.median(taus)), tau_low=float(np.quantile(taus, tail)),
        tau_high=float(np.quantile(taus, 1 - tail)), resamples=len(sampled.weights), exact=sampled.exact, cases=cases,
    )  # fmt: skip


def _taus(full: np.ndarray, ranks: np.ndarray, sampled: Resamples, seed: int) -> np.ndarray:
    """Kendall's tau of resampled rankings against the full one, for ``TAU_SAMPLE`` resamples drawn with their
    probabilities (a draw, or the full data, with every model tied has no order to compare: 1)."""
    models = ranks.shape[0]
    if models < 2:
        return np.ones(1)
    chosen = np.random.default_rng(seed).choice(len(sampled.weights), size=TAU_SAMPLE, p=sampled.weights)
    sample = ranks[:, chosen]
    if models > 2:  # all at once; the asymptotic method only sets the p-value, which is not used
        taus = stats.kendalltau(np.broadcast_to(full[:, None], sample.shape), sample, axis=0,
                                method="asymptotic").statistic  # fmt: skip
    else:  # the asymptotic p-value divides by (n - 2)
        taus = np.array([stats.kendalltau(full, sample[:, d]).statistic for d in range(sample.shape[1])])
    return np.nan_to_num(np.asarray(taus, dtype=np.float64), nan=1.0)


def smallest_wilcoxon_p(cases: int) -> float:
    """The smallest p-value an exact one-sided Wilcoxon signed-rank test can reach with ``cases`` pairs: all
    differences of one sign, 1 / 2^cases (1/512 with 9 test volumes)."""
    return float(stats.wilcoxon(np.arange(1, cases + 1), alternative="greater", method="exact").pvalue)
