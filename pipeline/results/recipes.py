"""How sure a ranking of **recipes** is (architecture x encoder x initialisation, trained again with other
seeds): what a researcher reusing the recipe, not the released weights, can expect.

The released checkpoints are one training run each; retraining a recipe with another seed (or on another
machine) gives another checkpoint, and the benchmark's demo showed how far apart two of them can land. Where a
recipe was trained with two or more seeds (params ``repeats``), a two-level bootstrap resamples both sources
of variation in each draw: the test volumes (with replacement, the same volumes for every recipe) and, for
each recipe, its runs (with replacement); a recipe's score in a draw is its mean over the drawn runs and
volumes, and the recipes are ranked by it. Per recipe: the mean Dice over its runs, the seed standard
deviation, the median rank and its ``confidence`` interval. Tiers: the leader (best mean) and every recipe
whose bootstrap difference from it has an interval that reaches 0 form tier 1; among the rest, the best and
those not separable from it tier 2, and so on. With 3 seeds the seed level of this bootstrap is coarse (a
resample of 3 runs takes only 10 distinct forms): read the intervals as approximate.

Runs that did not learn are part of a recipe (a recipe that fails one seed in three is worse than one that
never fails) and count as their scores; runs that failed outright have no scores and are counted apart.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipeline.results.ranking import MIN_DRAWS


@dataclass(frozen=True)
class Recipe:
    key: tuple[str, str, str, str]  # experiment, architecture, encoder, encoder_weights
    scores: np.ndarray  # runs x volumes (the runs that have scores)
    failed: int  # runs that failed without scores


def recipe_ranking(recipes: list[Recipe], higher_better: bool, draws: int, confidence: float, seed: int) -> list[dict]:
    """The rows of recipes.csv for one experiment: the recipes with two or more scored runs, ranked."""
    recipes = [recipe for recipe in recipes if recipe.scores.shape[0] >= 2]
    if not recipes:
        return []
    volumes = recipes[0].scores.shape[1]
    if any(recipe.scores.shape[1] != volumes for recipe in recipes):
        raise ValueError("every run must be scored on the same test volumes")
    rng = np.random.default_rng(seed)
    draws = max(draws, MIN_DRAWS)
    volume_counts = np.stack([np.bincount(row, minlength=volumes)
                              for row in rng.integers(0, volumes, size=(draws, volumes))])  # fmt: skip
    means = np.empty((len(recipes), draws))
    for index, recipe in enumerate(recipes):
        runs = recipe.scores.shape[0]
        per_run = volume_counts @ recipe.scores.T / volumes  # draws x runs: each run on the drawn volumes
        chosen = rng.integers(0, runs, size=(draws, runs))  # each draw's runs, with replacement
        means[index] = np.take_along_axis(per_run, chosen, axis=1).mean(axis=1)
    sign = -1.0 if higher_better else 1.0
    ranks = stats.rankdata(sign * means, axis=0, method="min")
    point = np.array([recipe.scores.mean() for recipe in recipes])
    full = stats.rankdata(sign * point, method="min").astype(int)
    tail = (1 - confidence) / 2
    tier = _tiers(means, point, higher_better, tail)
    rows = []
    for index, recipe in enumerate(recipes):
        run_means = recipe.scores.mean(axis=1)
        experiment, architecture, encoder, weights = recipe.key
        rows.append({
            "experiment": experiment, "architecture": architecture, "encoder": encoder, "encoder_weights": weights,
            "seeds": int(recipe.scores.shape[0]), "failed_seeds": recipe.failed, "dice": float(point[index]),
            "seed_sd": float(np.std(run_means, ddof=1)), "rank": int(full[index]),
            "rank_median": int(np.quantile(ranks[index], 0.5, method="inverted_cdf")),
            "rank_low": int(np.quantile(ranks[index], tail, method="inverted_cdf")),
            "rank_high": int(np.quantile(ranks[index], 1 - tail, method="inverted_cdf")),
            "tier": int(tier[index]), "draws": draws,
        })  # fmt: skip
    return sorted(rows, key=lambda row: (row["rank"], row["architecture"], row["encoder"], row["encoder_weights"]))


def _tiers(means: np.ndarray, point: np.ndarray, higher_better: bool, tail: float) -> np.ndarray:
    sign = 1.0 if higher_better else -1.0
    tier = np.zeros(len(point), dtype=int)
    level = 0
    while (tier == 0).any():
        level += 1
        left = np.flatnonzero(tier == 0)
        leader = left[np.argmax(sign * point[left])]  # the first of equals
        difference = sign * (means[leader] - means[left])  # > 0: the leader is better, in each draw
        tier[left[np.quantile(difference, tail, axis=1) <= 0]] = level
        tier[leader] = level
    return tier
