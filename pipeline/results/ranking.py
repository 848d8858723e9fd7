"""How sure a ranking of the released checkpoints is: which models cannot be excluded from being the best, rank
confidence sets, how the order moves with the test set, and its stability.

Input: one score per (model, test case) in a models x cases matrix, for these checkpoints: the uncertainty here
is the test set's, not training's (for recipes over seeds see pipeline.results.recipes). The population: these
checkpoints, on test cases like these.

- **Separations** (``separations``): every pair of models compared at once. Each pair's statistic is the paired
  t of its per-case differences; a pair is separated when both the Westfall-Young single-step max-T (Westfall
  and Young 1993; the null distribution of the largest |t| over *all* pairs from exchanging the model labels
  within each case: exact enumeration where it fits, else ``PERMUTATIONS`` random ones) and Holm's step-down
  over exact paired t-tests separate it: the error rate holds if either exchangeability or normal differences
  hold. The family is every pair, so the leader being chosen on the same cases cannot inflate the error rate, and the
  statistic does not run out of resolution as models are added (an exact Wilcoxon over 9 cases stops at
  p = 1/512, which a Holm correction over more than 25 comparisons can never reach). One set of decisions
  gives three views that never disagree:
  - **tiers**: tier 1 = every model no model is separated from as better = cannot be excluded from being the
    best at ``confidence``; tier 2 the same among the rest, and so on (``tiers``, the entry point);
  - **rank confidence sets** (Mogstad, Romano, Shaikh and Wilhelm 2024): from 1 + the models separated as
    better to the count minus those separated as worse, simultaneous over all models;
  - the **significance map**: the pairs' adjusted p-values.
  ``python -m benchmarks.calibration`` shows that the rule holds its level with 9 cases from 2 to 200 models
  and has power at 200.
- **Rank distribution** (descriptive): the test cases are resampled with replacement, the same cases for every
  model, and the models ranked by their mean over the resample (ties share the best rank). With 9 cases there
  are only 24,310 distinct resamples (multisets), so where ranking every one of them stays cheap
  (``EXACT_BUDGET`` model-resamples: up to 82 models with 9 cases) they are **enumerated exactly**, each
  weighted by its multinomial probability. Otherwise ``max(draws, 10,000)`` random draws stand in, and P(rank 1)
  is rounded to the precision their error allows. Per model: median rank, P(rank 1) (how often a resampled test
  set puts it first: not the probability that it is the best model) and the distribution (the blob plot).
- **Stability**: Kendall's tau of the resampled rankings against the full one, its distribution estimated
  from ``TAU_SAMPLE`` resamples drawn with their probabilities.

``python -m benchmarks.ranking`` times 3 x 200 models.
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
PERMUTATIONS = 10_000  # random within-volume permutations of the max-T null when enumerating them is too many
# The metrics models are ranked by, and whether higher is better.
RANKED = {"dice": True, "nsd": True, "hd95": False}


@dataclass(frozen=True)
class RankSettings:
    """What every ranking of a run is computed with (params ``evaluate`` and ``ranking``)."""

    draws: int  # resamples of the rank distribution where they are drawn
    confidence: float
    seed: int
    permutations: int = 10_000  # of the max-T null where enumerating is too many
    relevant_difference: float = 0.01  # Dice, the primary endpoint

    @classmethod
    def from_params(cls, params) -> "RankSettings":
        return cls(params.evaluate.bootstrap_samples, params.evaluate.confidence, params.evaluate.seed,
                   params.ranking.permutations, params.ranking.relevant_difference)  # fmt: skip

    @property
    def alpha(self) -> float:
        return round(1 - self.confidence, 12)


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


_CHUNK = 64  # permutations per vectorised batch (k x k matrices each)


def tier_words(tier: int, rank: int) -> str:
    """How a tier reads: the leader leads; tier 1 cannot be excluded from being the best."""
    if tier == 1:
        return "tier 1: leads" if rank == 1 else "tier 1: cannot be excluded from being the best"
    above = "tier 1" if tier == 2 else f"tiers 1-{tier - 1}"
    return f"tier {tier}: separated from the best; the best of the models below {above}, or not excluded from being it"


def peel_tiers(better: np.ndarray) -> np.ndarray:
    """Tiers from pairwise decisions (``better[i, j]``: i separated from j as better): tier 1 = those no one is
    separated from as better, tier 2 = the same among the rest, and so on."""
    tier = np.zeros(better.shape[0], dtype=int)
    level = 0
    while (tier == 0).any():
        level += 1
        left = tier == 0
        tier[np.flatnonzero(left)[~better[np.ix_(left, left)].any(axis=0)]] = level
    return tier


@dataclass(frozen=True)
class Separations:
    """Every pair of models compared at once (``separations``).

    ``better[i, j]``: model i is separated from j as better; ``p[i, j]``: the pair's adjusted p (symmetric, 1 on
    the diagonal). The family is every pair of the matrix's models, so these decisions hold together with
    probability >= 1 - alpha: choosing the leader on the same volumes cannot inflate them."""

    better: np.ndarray
    p: np.ndarray
    alpha: float
    permutations: int
    exact: bool

    def tiers(self, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tier, p): tier 1 holds every model that no model is separated from as better, i.e. that cannot be
        excluded from being the best; tier 2 the same among the rest, and so on. A model's p is the smallest
        adjusted p of a model with a better mean against it (the strongest evidence that it is not the best;
        >= alpha in tier 1), NaN for the model with the best mean (nothing is better)."""
        tier = peel_tiers(self.better)
        ahead = means[None, :] > means[:, None]  # ahead[i, j]: j has the better mean
        evidence = np.where(ahead, self.p, np.inf).min(axis=1)
        return tier, np.where(np.isinf(evidence), np.nan, evidence)

    def rank_sets(self) -> tuple[np.ndarray, np.ndarray]:
        """Simultaneous rank confidence sets (Mogstad, Romano, Shaikh and Wilhelm 2024): a model ranks no better
        than 1 + the models separated as better than it, and no worse than the count of models minus those it
        is separated as better than; all sets hold together when the pairwise decisions do."""
        models = self.better.shape[0]
        return 1 + self.better.sum(axis=0), models - self.better.sum(axis=1)


# Below this share of the two models' own sums of squares, the spread of a pair's differences is rounding and the
# differences are constant (float32 carries about 7 digits, float64 about 16).
CONSTANT = {np.float32: (1e-6, 1e-30), np.float64: (1e-12, 1e-300)}


def _pair_t_squared(batch: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Squared paired t of every pair of rows of each matrix of ``batch`` (B, models, cases) -> (B, models,
    models): t^2 = gap^2 n (n - 1) / (sum of squared deviations of the differences), computed in ``dtype`` with
    few temporaries. A pair whose differences are constant has t 0 when they are 0, else infinity. The observed
    statistics and an exact permutation null use float64 (the observed labelling, one of the permutations, then
    gives the very same number); a random null uses float32, twice as fast (the observed one is counted apart)."""
    cases = batch.shape[-1]
    work = np.array(batch, dtype=dtype)
    means = work.mean(axis=-1)
    work -= means[..., None]
    spread = work @ np.swapaxes(work, -1, -2)  # sums of cross-products
    squares = np.diagonal(spread, axis1=-2, axis2=-1).copy()
    spread *= -2
    spread += squares[..., :, None]
    spread += squares[..., None, :]  # sum of squared deviations of x_i - x_j
    gap = means[..., :, None] - means[..., None, :]
    relative, tiny = CONSTANT[dtype]
    constant = spread <= relative * (squares[..., :, None] + squares[..., None, :]) + tiny
    squared = gap * gap
    with np.errstate(divide="ignore", invalid="ignore"):
        squared /= spread
    squared *= cases * (cases - 1)
    squared[constant] = np.where(gap[constant] != 0, np.inf, 0.0)
    return squared


def _within_volume_permutations(scores: np.ndarray, permutations: int, seed: int):
    """(batches of scores with model labels permuted within each volume, the count, exact): every distinct
    permutation when (models!)^cases fits ``permutations``, else that many random ones plus the observed one."""
    models, cases = scores.shape
    if math.factorial(models) ** cases <= permutations:
        from itertools import permutations as orders
        from itertools import product

        per_volume = list(orders(range(models)))
        table = np.array(list(product(range(len(per_volume)), repeat=cases)))  # every combination
        index = np.array(per_volume)[table]  # (count, cases, models)
        batches = (np.take_along_axis(scores.T[None], index[i : i + _CHUNK], axis=2).swapaxes(1, 2)
                   for i in range(0, len(index), _CHUNK))  # fmt: skip
        return batches, len(index), True
    rng = np.random.default_rng(seed)

    def draws():
        left = permutations
        while left:
            size = min(_CHUNK, left)
            index = rng.permuted(np.broadcast_to(np.arange(models), (size, cases, models)), axis=2)
            yield np.take_along_axis(np.broadcast_to(scores.T, (size, cases, models)), index, axis=2).swapaxes(1, 2)
            left -= size

    return draws(), permutations, False


def separations(scores: np.ndarray, higher_better: bool, confidence: float = 1 - ALPHA,
                permutations: int = PERMUTATIONS, seed: int = 0) -> Separations:  # fmt: skip
    """Compare every pair of models (rows of ``scores``, models x cases) at once.

    A pair's statistic is the paired t of its per-case differences. It is separated only when two procedures
    over every pair both separate it, so that the family-wise error rate holds when *either* one's assumption
    holds (the pair's p is the larger of the two adjusted p-values):

    - the Westfall-Young single-step max-T (Westfall and Young 1993): the null distribution of the largest |t|
      over all pairs comes from exchanging model labels within each case; exact when the models' scores are
      exchangeable on every case, whatever their distribution;
    - Holm's step-down over the exact two-sided paired t-test p-values (Student's t, cases - 1 degrees of
      freedom): exact for normal differences whatever each model's own variance, and valid for any dependence
      between pairs, so it holds under partial nulls and unequal noise where the permutation null does not
      (measured in ``python -m benchmarks.calibration``)."""
    scores = np.asarray(scores, dtype=np.float64)
    models, cases = scores.shape
    alpha = 1 - confidence
    if models < 2 or cases < 2:
        return Separations(np.zeros((models, models), bool), np.ones((models, models)), alpha, 0, True)
    upper = np.triu_indices(models, 1)
    pair_t = np.sqrt(_pair_t_squared(scores[None])[0][upper])
    thresholds = np.sort(pair_t)
    reached = np.zeros(len(thresholds), dtype=np.int64)  # permutations whose max |t| reaches each threshold
    batches, count, exact = _within_volume_permutations(scores, permutations, seed)
    dtype = np.float64 if exact else np.float32
    for batch in batches:
        largest = np.sqrt(_pair_t_squared(batch, dtype).reshape(len(batch), -1).max(axis=1), dtype=np.float64)
        reached += len(batch) - np.searchsorted(np.sort(largest), thresholds, side="left")  # largest >= each
    # Exact: every permutation, the observed labelling among them. Random: the observed one counted in.
    adjusted_sorted = reached / count if exact else (reached + 1) / (count + 1)
    max_t = adjusted_sorted[np.searchsorted(thresholds, pair_t)]
    paired_t = holm(2 * stats.t.sf(pair_t, cases - 1))
    p = np.ones((models, models))
    p[upper] = np.maximum(max_t, paired_t)
    p = np.minimum(p, p.T)
    means = scores.mean(axis=1) * (1.0 if higher_better else -1.0)
    better = (p < alpha) & (means[:, None] > means[None, :])
    return Separations(better, p, alpha, count, exact)


def tiers(scores: np.ndarray, higher_better: bool, confidence: float = 1 - ALPHA,
          permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(tier of each model, the p behind it) for ``scores`` (models x cases): tier 1 = cannot be excluded from
    being the best at ``confidence`` by the procedure of ``separations`` over every pair."""
    scores = np.asarray(scores, dtype=np.float64)
    found = separations(scores, higher_better, confidence, permutations, seed)
    return found.tiers(scores.mean(axis=1) * (1.0 if higher_better else -1.0))


def significance_map(ids: list[str], rows: list[int], found: Separations, means: np.ndarray) -> dict:
    """The decisions of ``found`` for the models ``ids`` (at rows ``rows`` of its family): p[i][j] is the
    adjusted p that model i is better than j (1 where i's mean is not better; ``means`` oriented so that higher
    is better), None on the diagonal. The tiers read the same decisions, so the two never disagree."""
    matrix = []
    for i in rows:
        line = []
        for j in rows:
            line.append(None if i == j else round(float(found.p[i, j]) if means[i] > means[j] else 1.0, 4))
        matrix.append(line)
    family = found.p.shape[0]
    return {"ids": list(ids), "p": matrix, "alpha": round(found.alpha, 6), "comparisons": family * (family - 1) // 2,
            "permutations": found.permutations, "exact": found.exact}  # fmt: skip


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
    tier_p: np.ndarray  # the adjusted p behind the tier (see Separations.tiers); NaN for the best mean
    frequencies: np.ndarray  # models x ranks: the probability of each rank (column r: rank r + 1)
    tau_median: float
    tau_low: float
    tau_high: float
    resamples: int
    exact: bool
    cases: int
    separations: Separations  # the pairwise decisions behind tier, rank_low and rank_high

    def rows(self) -> list[dict]:
        return [
            {"id": model, "rank": int(self.rank[i]), "rank_median": int(self.rank_median[i]),
             "rank_low": int(self.rank_low[i]), "rank_high": int(self.rank_high[i]),
             "p_rank1": round(float(self.p_rank1[i]), self.p_decimals), "tier": int(self.tier[i]),
             "tier_p": None if np.isnan(self.tier_p[i]) else round(float(self.tier_p[i]), 4)}
            for i, model in enumerate(self.ids)
        ]  # fmt: skip

    def significance(self, top: int) -> dict:
        """The significance map of the ``top`` models of the full ranking (the whole family's decisions)."""
        order = [int(i) for i in np.argsort(self.rank, kind="stable")[:top]]
        return significance_map([self.ids[i] for i in order], order, self.separations, -self.rank.astype(float))

    def blobs(self, top: int) -> list[dict]:
        """Blob-plot data of the ``top`` models of the full ranking: each rank a model took, and how often."""
        order = np.argsort(self.rank, kind="stable")[:top]
        return [
            {"id": self.ids[i], "rank": int(self.rank[i]), "rank_median": int(self.rank_median[i]),
             "rank_low": int(self.rank_low[i]), "rank_high": int(self.rank_high[i]),
             "ranks": {str(r + 1): round(float(f), 4) for r, f in enumerate(self.frequencies[i]) if f >= 5e-5}}
            for i in order
        ]  # fmt: skip


def bootstrap_ranking(ids: list[str], scores: np.ndarray, higher_better: bool, draws: int, confidence: float,
                      seed: int, permutations: int = PERMUTATIONS) -> Ranking:  # fmt: skip
    """How sure the ranking of ``scores`` (models x cases, no NaN) of these checkpoints is: tiers and rank
    confidence sets from one simultaneous procedure over every pair (``separations``), and the rank distribution over
    resamples of the cases (descriptive: how the order moves with the test set)."""
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
    found = separations(scores, higher_better, confidence, permutations, seed)
    tier, tier_p = found.tiers(-sign * full_means)
    rank_low, rank_high = found.rank_sets()
    taus = _taus(full, ranks, sampled, seed)
    return Ranking(
        ids=list(ids), rank=full, rank_median=_weighted_quantiles(frequencies, 0.5), rank_low=rank_low,
        rank_high=rank_high, p_rank1=frequencies[:, 0], p_decimals=p_rank1_decimals(sampled), tier=tier,
        tier_p=tier_p, frequencies=frequencies, tau_median=float(np.median(taus)),
        tau_low=float(np.quantile(taus, tail)), tau_high=float(np.quantile(taus, 1 - tail)),
        resamples=len(sampled.weights), exact=sampled.exact, cases=cases, separations=found,
    )  # fmt: skip


def _taus(full: np.ndarray, ranks: np.ndarray, sampled: Resamples, seed: int) -> np.ndarray:
    """Kendall's tau of resampled rankings against the full one, for ``TAU_SAMPLE`` resamples drawn with their
    probabilities (a draw, or the full data, with every model tied has no order to compare: 1)."""
    models = ranks.shape[0]
    if models < 2:
        return np.ones(1)
    chosen = np.random.default_rng(seed).choice(len(sampled.weights), size=TAU_SAMPLE, p=sampled.weights)
    sample = ranks[:, chosen]
    # Each distinct resampled ranking once: with few models the draws repeat a handful of orders (two models have
    # at most three; 4 models on 9 volumes took 1,000 calls of scipy where a few dozen do). The asymptotic method
    # only sets the p-value, which is not used; with two models it would divide by n - 2.
    orders, which = np.unique(sample, axis=1, return_inverse=True)
    if models > 2:
        taus = stats.kendalltau(np.broadcast_to(full[:, None], orders.shape), orders, axis=0,
                                method="asymptotic").statistic  # fmt: skip
    else:
        taus = np.array([stats.kendalltau(full, order).statistic for order in orders.T])
    taus = np.asarray(taus, dtype=np.float64)[which.ravel()]
    return np.nan_to_num(taus, nan=1.0)


def smallest_wilcoxon_p(cases: int) -> float:
    """The smallest p-value an exact one-sided Wilcoxon signed-rank test can reach with ``cases`` pairs: all
    differences of one sign, 1 / 2^cases (1/512 with 9 test volumes)."""
    return float(stats.wilcoxon(np.arange(1, cases + 1), alternative="greater", method="exact").pvalue)
