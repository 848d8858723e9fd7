"""How sure a ranking is: bootstrap over test cases, rank intervals, tiers and the stability of the order.

The anchor is challengeR (Wiesenfarth et al., Sci Rep 2021). Input: one score per (model, test case) in a
models x cases matrix. Each of ``draws`` bootstrap draws resamples the cases with replacement, the same
cases for every model, averages each model over them and ranks the models (ties share the best rank). Per
model this gives the distribution of its rank: median, a ``confidence`` interval (e.g. rank 3, 95% interval
1-7) and P(rank 1). Per ranking, Kendall's tau of each draw's ranking against the full one measures how
stable the order is (1: every draw agrees).

Tiers: the leader (rank 1 on the full data) and every model whose mean difference from it has a bootstrap
interval (same draws, paired by case) that includes 0 form tier 1: not separable from the leader with these
cases. Among the rest, the best and the models not separable from it form tier 2, and so on.

With 9 test volumes this is all the evidence there is; training variance (other seeds) is separate and
reported beside it (pipeline.results.aggregate). Vectorised: 600 models x 9 cases x 1000 draws take well under a
second (``python -m benchmarks.ranking``).
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Ranking:
    ids: list[str]
    rank: np.ndarray  # on the full data (1 = best; ties share the best rank)
    rank_median: np.ndarray
    rank_low: np.ndarray
    rank_high: np.ndarray
    p_rank1: np.ndarray
    tier: np.ndarray
    frequencies: np.ndarray  # models x models: how often each model took each rank (column r: rank r + 1)
    tau_median: float
    tau_low: float
    tau_high: float
    draws: int
    cases: int

    def rows(self) -> list[dict]:
        return [
            {"id": model, "rank": int(self.rank[i]), "rank_median": int(self.rank_median[i]),
             "rank_low": int(self.rank_low[i]), "rank_high": int(self.rank_high[i]),
             "p_rank1": round(float(self.p_rank1[i]), 4), "tier": int(self.tier[i])}
            for i, model in enumerate(self.ids)
        ]  # fmt: skip

    def blobs(self, top: int) -> list[dict]:
        """Blob-plot data of the ``top`` models of the full ranking: each rank a model took, and how often."""
        order = np.argsort(self.rank, kind="stable")[:top]
        return [
            {"id": self.ids[i], "rank": int(self.rank[i]), "rank_median": int(self.rank_median[i]),
             "rank_low": int(self.rank_low[i]), "rank_high": int(self.rank_high[i]),
             "ranks": {str(r + 1): round(float(f), 4) for r, f in enumerate(self.frequencies[i]) if f > 0}}
            for i in order
        ]  # fmt: skip


def _tiers(means: np.ndarray, full: np.ndarray, higher_better: bool, tail: float) -> np.ndarray:
    """Tier of each model (see the module docstring), from the models x draws matrix of bootstrap means."""
    sign = 1.0 if higher_better else -1.0
    tier = np.zeros(len(full), dtype=int)
    level = 0
    while (tier == 0).any():
        level += 1
        left = np.flatnonzero(tier == 0)
        leader = left[np.argmin(full[left])]  # the first of equals
        difference = sign * (means[leader] - means[left])  # > 0: the leader is better, in each draw
        low = np.quantile(difference, tail, axis=1)
        tier[left[low <= 0]] = level  # the interval reaches 0 (or below): not separable from this tier's leader
        tier[leader] = level
    return tier


def bootstrap_ranking(
    ids: list[str], scores: np.ndarray, higher_better: bool, draws: int, confidence: float, seed: int
) -> Ranking:
    """Rank uncertainty of ``scores`` (models x cases, no NaN) over ``draws`` case bootstraps."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(ids) or scores.shape[1] == 0:
        raise ValueError(f"need a models x cases matrix for {len(ids)} models, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores must be defined for every model and case")
    models, cases = scores.shape
    sign = -1.0 if higher_better else 1.0
    index = np.random.default_rng(seed).integers(0, cases, size=(draws, cases))
    means = scores[:, index].mean(axis=2)  # models x draws, the same cases for every model in each draw
    ranks = stats.rankdata(sign * means, axis=0, method="min").astype(int)
    full = stats.rankdata(sign * scores.mean(axis=1), method="min").astype(int)
    tail = (1 - confidence) / 2

    def quantile(q: float) -> np.ndarray:  # an observed rank, never a fraction between two
        return np.quantile(ranks, q, axis=1, method="inverted_cdf").astype(int)

    frequencies = np.stack([np.bincount(row - 1, minlength=models) for row in ranks]) / draws
    if models > 2:  # all draws in one call; the asymptotic method only sets the p-value, which is not used
        full_per_draw = np.broadcast_to(full[:, None], ranks.shape)
        taus = stats.kendalltau(full_per_draw, ranks, axis=0, method="asymptotic").statistic
    elif models == 2:  # the asymptotic p-value divides by (n - 2)
        taus = np.array([stats.kendalltau(full, ranks[:, d]).statistic for d in range(draws)])
    else:
        taus = np.ones(1)
    # A draw (or the full data) with every model tied has no order to compare: count it as agreeing.
    taus = np.nan_to_num(np.asarray(taus, dtype=np.float64), nan=1.0)
    return Ranking(
        ids=list(ids), rank=full, rank_median=quantile(0.5), rank_low=quantile(tail), rank_high=quantile(1 - tail),
        p_rank1=(ranks == 1).mean(axis=1), tier=_tiers(means, full, higher_better, tail), frequencies=frequencies,
        tau_median=float(np.median(taus)), tau_low=float(np.quantile(taus, tail)),
        tau_high=float(np.quantile(taus, 1 - tail)), draws=draws, cases=cases,
    )  # fmt: skip


def smallest_wilcoxon_p(cases: int) -> float:
    """The smallest p-value an exact one-sided Wilcoxon signed-rank test can reach with ``cases`` pairs: all
    differences of one sign, 1 / 2^cases (1/512 with 9 test volumes)."""
    return float(stats.wilcoxon(np.arange(1, cases + 1), alternative="greater", method="exact").pvalue)
