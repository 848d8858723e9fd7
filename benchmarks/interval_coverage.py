"""How often a nominal 95% interval of a mean over a few test volumes covers the true mean, in simulation.

    python -m benchmarks.interval_coverage              # 2000 repetitions per case (a minute)
    python -m benchmarks.interval_coverage --reps 300   # a quick look

Draws samples of 9 and 5 volumes from distributions shaped like per-volume scores (lung Dice close to 1;
lesion Dice spread wide; lesion Dice with a fifth of volumes missed entirely; HD95 with a long tail), and
counts how often three intervals contain the true mean: the percentile bootstrap (what this project used
until round 3), BCa (scipy.stats.bootstrap) and Student's t (what it uses now, pipeline.evaluation.metrics).
The numbers behind the choice of interval in the README and on the Methods page. The last line is the
summary.
"""

import argparse
import warnings

import numpy as np
from scipy import stats

from pipeline.evaluation.metrics import mean_interval

CASES = {
    "lung Dice, Beta(60, 3)": (lambda rng, n: rng.beta(60, 3, n), 60 / 63, (0.0, 1.0)),
    "lesion Dice, Beta(2, 4)": (lambda rng, n: rng.beta(2, 4, n), 2 / 6, (0.0, 1.0)),
    "lesion Dice, 20% missed": (lambda rng, n: np.where(rng.random(n) < 0.2, 0.0, rng.beta(3, 3, n)), 0.4, (0.0, 1.0)),
    "HD95 mm, lognormal(2, 1)": (lambda rng, n: rng.lognormal(2, 1, n), float(np.exp(2.5)), (0.0, np.inf)),
}


def percentile(rng, values: np.ndarray) -> tuple[float, float]:
    means = values[rng.integers(0, len(values), (1000, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def bca(rng, values: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate resamples of a few values
        result = stats.bootstrap((values,), np.mean, method="BCa", n_resamples=1000, random_state=rng)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    worst = {"percentile": 1.0, "BCa": 1.0, "t": 1.0}
    for volumes in (9, 5):
        for name, (draw, truth, bounds) in CASES.items():
            hits = {"percentile": 0, "BCa": 0, "t": 0}
            for _ in range(args.reps):
                values = draw(rng, volumes)
                for method, (low, high) in (("percentile", percentile(rng, values)), ("BCa", bca(rng, values)),
                                            ("t", mean_interval(values, 0.95, bounds))):  # fmt: skip
                    hits[method] += low <= truth <= high
            coverage = {method: count / args.reps for method, count in hits.items()}
            if not name.startswith("HD95"):
                worst = {method: min(worst[method], value) for method, value in coverage.items()}
            print(f"{volumes} volumes, {name:<26} " + "  ".join(f"{m} {v:.1%}" for m, v in coverage.items()))
    print("interval_coverage: nominal 95% over Dice-like scores, worst case: "
          + ", ".join(f"{method} {value:.1%}" for method, value in worst.items()))  # fmt: skip


if __name__ == "__main__":
    main()
