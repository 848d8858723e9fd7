"""How sure a ranking of **recipes** is (architecture x encoder x initialisation, trained again with other
seeds): what retraining the recipe gives, not what the released weights give.

The released checkpoints are one training run each; retraining a recipe with another seed (or on another
machine) gives another checkpoint. Where a recipe was trained with two or more seeds (params ``repeats``), its
runs are treated as draws of a random seed effect: each run's mean Dice over the test volumes is one
observation, and the recipe's mean gets a Student t interval on the seed degrees of freedom (runs - 1; with 3
seeds the 95% quantile is 4.30, so intervals are wide: honest, not useless). The population: models retrained
from this recipe, scored on these test volumes (the volumes are held fixed; the checkpoint ranking speaks for
the test set).

Recipes are compared pair by pair with Welch's t test on their run means (each recipe's own seed variance),
Holm-corrected over every pair of the experiment, so the family is fixed before any leader is looked at. Tier 1:
the recipes no recipe is separated from as better (cannot be excluded from being the best recipe); the rank
set of a recipe runs from 1 + the recipes separated as better to the count minus those separated as worse.
``python -m benchmarks.calibration`` measures the interval's coverage and the tiers' false splits at 3 and 5
seeds.

Runs that did not learn are part of a recipe (a recipe that fails one seed in three is worse than one that
never fails) and count as their scores; runs that failed outright have no scores and are counted apart.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pipeline.results.ranking import holm, peel_tiers


@dataclass(frozen=True)
class Recipe:
    key: tuple[str, str, str, str]  # experiment, architecture, encoder, encoder_weights
    scores: np.ndarray  # runs x volumes (the runs that have scores)
    failed: int  # runs that failed without scores


def seed_interval(run_means: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student t interval of the mean of ``run_means`` on runs - 1 degrees of freedom, clipped to [0, 1]."""
    runs = len(run_means)
    centre, spread = float(np.mean(run_means)), float(np.std(run_means, ddof=1))
    if spread == 0:
        return centre, centre
    half = stats.t.ppf(0.5 + confidence / 2, runs - 1) * spread / np.sqrt(runs)
    return max(0.0, centre - half), min(1.0, centre + half)


def welch_p(first: np.ndarray, second: np.ndarray) -> float:
    """Two-sided Welch t-test p of two sets of run means; where neither varies: 1 if equal, else 0."""
    return float(welch_matrix([np.asarray(first, dtype=float), np.asarray(second, dtype=float)])[0, 1])


def welch_matrix(run_means: list[np.ndarray]) -> np.ndarray:
    """Two-sided Welch p of every pair of recipes at once (``welch_p``'s numbers, vectorised: 200 recipes are
    19,900 pairs)."""
    means = np.array([m.mean() for m in run_means])
    counts = np.array([len(m) for m in run_means], dtype=float)
    errors = np.array([np.var(m, ddof=1) for m in run_means]) / counts  # squared standard errors
    total = errors[:, None] + errors[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(means[:, None] - means[None, :]) / np.sqrt(total)
        freedom = total**2 / (
            errors[:, None] ** 2 / (counts[:, None] - 1) + errors[None, :] ** 2 / (counts[None, :] - 1)
        )
        p = 2 * stats.t.sf(t, freedom)
    fixed = total == 0  # neither recipe varies: 1 if equal, else 0
    p[fixed] = np.where(means[:, None] == means[None, :], 1.0, 0.0)[fixed]
    np.fill_diagonal(p, 1.0)
    return p


def pairwise_better(run_means: list[np.ndarray], alpha: float) -> np.ndarray:
    """better[i, j]: recipe i separated from j as better (Welch, Holm over every pair)."""
    count = len(run_means)
    upper = np.triu_indices(count, 1)
    p = np.ones((count, count))
    p[upper] = holm(welch_matrix(run_means)[upper])
    p = np.minimum(p, p.T)
    means = np.array([m.mean() for m in run_means])
    return (p < alpha) & (means[:, None] > means[None, :])


def recipe_ranking(recipes: list[Recipe], higher_better: bool, confidence: float) -> list[dict]:
    """The rows of recipes.csv for one experiment: the recipes with two or more scored runs, ranked by their
    mean (descriptive) with a seed interval, rank set and tier."""
    recipes = [recipe for recipe in recipes if recipe.scores.shape[0] >= 2]
    if not recipes:
        return []
    volumes = recipes[0].scores.shape[1]
    if any(recipe.scores.shape[1] != volumes for recipe in recipes):
        raise ValueError("every run must be scored on the same test volumes")
    sign = 1.0 if higher_better else -1.0
    run_means = [sign * recipe.scores.mean(axis=1) for recipe in recipes]
    point = np.array([m.mean() for m in run_means])
    full = stats.rankdata(-point, method="min").astype(int)
    better = pairwise_better(run_means, 1 - confidence)
    tier = peel_tiers(better)
    rows = []
    for index, recipe in enumerate(recipes):
        own = recipe.scores.mean(axis=1)
        low, high = seed_interval(own, confidence)
        experiment, architecture, encoder, weights = recipe.key
        rows.append({
            "experiment": experiment, "architecture": architecture, "encoder": encoder, "encoder_weights": weights,
            "seeds": int(recipe.scores.shape[0]), "failed_seeds": recipe.failed, "dice": float(own.mean()),
            "dice_ci_low": low, "dice_ci_high": high, "seed_sd": float(np.std(own, ddof=1)),
            "rank": int(full[index]), "rank_low": int(1 + better[:, index].sum()),
            "rank_high": int(len(recipes) - better[index].sum()), "tier": int(tier[index]),
        })  # fmt: skip
    return sorted(rows, key=lambda row: (row["rank"], row["architecture"], row["encoder"], row["encoder_weights"]))
