"""The ranking statistics at the grid's scale: 600 made-up models x 9 test volumes.

    python -m benchmarks.ranking

Times pipeline.results.aggregate's ``rank_all`` (the bootstrap ranking of every experiment for Dice, NSD and HD95:
median rank, rank interval, P(rank 1), Kendall's tau, tiers) on a made-up result set of 200 models in each of
the three experiments, 1000 draws, then a single experiment of all 600 models. The scores are random and
labelled as such; only the time matters. The last line is the total for the three experiments (target: under
5 s).
"""

import time

import numpy as np
import pandas as pd

from pipeline.results.aggregate import rank_all

EXPERIMENTS = ("lung", "lesion_a", "lesion_b")
VOLUMES = 9


def made_up(models_per_experiment: int, experiments=EXPERIMENTS, seed: int = 0):
    """(leaderboard frame, per-model per-volume scores) with random, plausible numbers."""
    rng = np.random.default_rng(seed)
    rows, volumes = [], {}
    for experiment in experiments:
        for index in range(models_per_experiment):
            model_id = f"{experiment}-made-up-{index}"
            dice = np.clip(rng.normal(0.8, 0.05) + rng.normal(0, 0.04, VOLUMES), 0, 1)
            volumes[model_id] = pd.DataFrame({"dice": dice, "nsd": np.clip(dice - 0.05, 0, 1),
                                              "hd95": 30 * (1 - dice) + rng.normal(0, 1, VOLUMES)})  # fmt: skip
            rows.append({"id": model_id, "experiment": experiment, "status": "ok"})
    return pd.DataFrame(rows), volumes


def main() -> None:
    settings = (1000, 0.95, 0)
    frame, volumes = made_up(200)
    started = time.perf_counter()
    ranks, _ = rank_all(frame, volumes, settings)
    three = time.perf_counter() - started
    single, single_volumes = made_up(600, experiments=("lung",))
    started = time.perf_counter()
    rank_all(single, single_volumes, settings)
    one = time.perf_counter() - started
    print(f"made-up scores (random numbers, not results): {len(frame)} models x {VOLUMES} volumes, 1000 draws")
    print(f"one experiment of 600 models, 3 metrics: {one:.2f} s ({one / 3:.2f} s per metric)")
    print(
        f"ranking: {len(ranks)} rank rows; 3 experiments x 200 models x 3 metrics in {three:.2f} s (target under 5 s)"
    )


if __name__ == "__main__":
    main()
