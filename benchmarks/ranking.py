"""The ranking statistics at the grid's scale: 600 made-up models x 9 test volumes.

    python -m benchmarks.ranking

Times what the aggregate stage computes to rank (pipeline.results.aggregate ``rank_all`` and ``rank_recipes``):
for Dice, NSD and HD95 of 200 models in each of the three experiments, the rank distribution over the test
volumes (exactly enumerated where it is cheap, else 10,000 draws), the tiers and rank sets from every pair
compared at once (max-T over 10,000 within-volume permutations and Holm over paired t-tests), the significance
map of the top 20 and Kendall's tau; then the recipes, each model trained with 3 seeds, with seed t intervals and
Welch-Holm tiers. The scores are random and labelled as such; only the time matters. The last line is the total.
"""

import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

from pipeline.results.aggregate import rank_all, rank_recipes
from pipeline.results.ranking import RankSettings, holm

EXPERIMENTS = ("lung", "lesion_a", "lesion_b")
VOLUMES = 9
SEEDS = 3


def made_up(models_per_experiment: int, experiments=EXPERIMENTS, seed: int = 0):
    """(leaderboard frame, per-model per-volume scores) with random, plausible numbers."""
    rng = np.random.default_rng(seed)
    rows, volumes = [], {}
    for experiment in experiments:
        for index in range(models_per_experiment):
            model_id = f"{experiment}-made-up-{index}"
            dice = np.clip(rng.normal(0.8, 0.05) + rng.normal(0, 0.04, VOLUMES), 0, 1)
            volumes[model_id] = pd.DataFrame({"volume": [f"{v}.nii.gz" for v in range(1, VOLUMES + 1)], "dice": dice,
                                              "nsd": np.clip(dice - 0.05, 0, 1),
                                              "hd95": 30 * (1 - dice) + rng.normal(0, 1, VOLUMES)})  # fmt: skip
            rows.append({"id": model_id, "experiment": experiment, "status": "ok", "source": "grid"})
    return pd.DataFrame(rows), volumes


def made_up_runs(volumes: dict[str, pd.DataFrame], seed: int = 1) -> tuple[list, dict]:
    """Each model with SEEDS - 1 more runs around it: what rank_recipes reads (run records with volumes)."""
    rng = np.random.default_rng(seed)
    mains, repeats = [], {}
    for model_id, frame in volumes.items():
        experiment = model_id.split("-")[0]
        cell = SimpleNamespace(experiment=experiment, architecture="unet", encoder=model_id, weights="random")

        def run(scores, name, cell=cell):
            return SimpleNamespace(run=SimpleNamespace(id=name, cell=cell), volumes=scores)

        mains.append(run(frame, model_id))
        repeats[model_id] = [run(frame.assign(dice=np.clip(frame["dice"] + rng.normal(0, 0.02), 0, 1)),
                                 f"{model_id}~seed{s}") for s in range(1, SEEDS)]  # fmt: skip
    return mains, repeats


def main() -> None:
    settings = RankSettings(draws=1000, confidence=0.95, seed=0)
    holm(np.array([0.5]))  # statsmodels' import, once, as in the stage
    frame, volumes = made_up(200)
    mains, repeats = made_up_runs(volumes)
    started = time.perf_counter()
    ranks, _ = rank_all(frame, volumes, settings)
    checkpoints = time.perf_counter() - started
    started = time.perf_counter()
    recipes = rank_recipes(mains, repeats, settings)
    recipe_seconds = time.perf_counter() - started
    print(f"made-up scores (random numbers, not results): {len(frame)} models x {VOLUMES} volumes, {SEEDS} seeds each")
    print(f"checkpoints: {len(ranks)} rank rows (3 metrics, max-T tiers, significance maps) in "
          f"{checkpoints:.2f} s")  # fmt: skip
    print(f"recipes: {len(recipes)} recipes, seed t intervals and Welch-Holm tiers, in {recipe_seconds:.2f} s")
    print(f"ranking: 3 experiments x 200 models, checkpoints and recipes, in {checkpoints + recipe_seconds:.2f} s "
          "(target under 60 s: every pair of 200 models at 10,000 permutations is about 5 s a family)")  # fmt: skip


if __name__ == "__main__":
    main()
