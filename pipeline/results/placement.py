"""Where an outside entry stands among the grid's checkpoints, and how it compares with the ones that matter.

The study's purpose for its baselines: a new model is compared "with models with the same number of
parameters". For each submission, against the leader of the grid's checkpoints and against every grid
checkpoint of similar size (parameters within a factor of ``SIZE_FACTOR`` either way), on the paired test
volumes: the mean difference, wins and losses, and an exact two-sided Wilcoxon signed-rank p (zero
differences dropped), Holm-adjusted over that entry's comparisons. The population is these checkpoints on these
volumes. Its place in the ranking is computed by the same bootstrap and tier rule as the leaderboard's
(pipeline.results.ranking), with the entry added to the grid's checkpoints.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from pipeline.core.outputs import read_table
from pipeline.results import ranking

SIZE_FACTOR = 2.0  # "similar size": parameters within this factor of the entry's, either way
ALPHA = ranking.ALPHA


@dataclass(frozen=True)
class Baselines:
    """The grid's ranked checkpoints of one experiment: ids, scores (models x volumes) per metric, sizes."""

    ids: list[str]
    volumes: list[str]
    scores: dict[str, np.ndarray]  # metric -> models x volumes
    params_m: dict[str, float]  # id -> millions of parameters (where known)


def two_sided_p(first: np.ndarray, second: np.ndarray) -> float:
    """Exact two-sided Wilcoxon signed-rank p of paired scores; 1 when every difference is 0."""
    difference = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    if not np.any(difference != 0):
        return 1.0
    return float(stats.wilcoxon(difference, method="exact", zero_method="wilcox").pvalue)


def similar_size(params_m: float | None, baselines: Baselines) -> list[str]:
    """The baselines within ``SIZE_FACTOR`` of ``params_m`` parameters, closest first (none if unknown)."""
    if params_m is None or not params_m > 0:
        return []
    close = [(abs(math.log(size / params_m)), model) for model, size in baselines.params_m.items()
             if size and size > 0 and abs(math.log(size / params_m)) <= math.log(SIZE_FACTOR)]  # fmt: skip
    return [model for _, model in sorted(close)]


def leader(baselines: Baselines, metric: str = "dice", higher_better: bool = True) -> str:
    means = baselines.scores[metric].mean(axis=1)
    return baselines.ids[int(np.argmax(means) if higher_better else np.argmin(means))]


def comparisons(entry: np.ndarray, baselines: Baselines, against: list[str], metric: str = "dice",
                higher_better: bool = True) -> list[dict]:  # fmt: skip
    """The entry against each of ``against`` on ``metric``, Holm-adjusted over these comparisons."""
    against = list(dict.fromkeys(against))
    if not against:
        return []
    rows, p_values = [], []
    for model in against:
        other = baselines.scores[metric][baselines.ids.index(model)]
        better = (entry > other) if higher_better else (entry < other)
        worse = (entry < other) if higher_better else (entry > other)
        p_values.append(two_sided_p(entry, other))
        rows.append({"against": model, "metric": metric, "difference": round(float(np.mean(entry - other)), 6),
                     "wins": int(better.sum()), "losses": int(worse.sum()), "pairs": len(entry),
                     "params_m": baselines.params_m.get(model)})  # fmt: skip
    adjusted = ranking.holm(np.array(p_values))
    for row, p, p_holm in zip(rows, p_values, adjusted, strict=True):
        sign = row["difference"] if higher_better else -row["difference"]
        verdict = "not separable" if p_holm >= ALPHA else ("better" if sign > 0 else "worse")
        row.update(p=round(p, 6), p_holm=round(float(p_holm), 6), verdict=verdict)
    return rows


def place(name: str, entry: dict[str, np.ndarray], baselines: Baselines, ranked: dict[str, bool],
          settings: tuple) -> dict[str, dict]:  # fmt: skip
    """Per metric: the entry's rank, rank interval, P(rank 1) and tier among the baselines plus itself."""
    samples, confidence, seed = settings
    out = {}
    for metric, higher in ranked.items():
        ids = [*baselines.ids, name]
        scores = np.vstack([baselines.scores[metric], entry[metric][None, :]])
        result = ranking.bootstrap_ranking(ids, scores, higher, samples, confidence, seed)
        row = result.rows()[-1]
        out[metric] = {**{k: row[k] for k in ("rank", "rank_low", "rank_high", "tier")}, "models": len(ids),
                       "p_rank1": round(float(row["p_rank1"]), result.p_decimals)}  # fmt: skip
    return out


def read_baselines(results_dir: Path, experiment: str, volumes: list[str], data_source: str) -> tuple:
    """(Baselines, "") of the grid's ranked checkpoints of ``experiment`` in results/, or (None, why not)."""
    results_dir = Path(results_dir)
    remedy = "rebuild it (`dvc repro aggregate`)"
    board = read_table(results_dir / "leaderboard.csv", ("id", "experiment", "status", "params_m", "data_source"),
                       remedy, optional=True)  # fmt: skip
    if board.empty:
        return None, f"no {results_dir}/leaderboard.csv to rank against (`dvc repro aggregate` makes it)"
    if "source" in board.columns:
        board = board[board["source"] == "grid"]
    board = board[(board["experiment"] == experiment) & (board["status"] == "ok")]
    if board.empty:
        return None, f"no ranked model of {experiment} in {results_dir}/leaderboard.csv"
    sources = set(board["data_source"].astype(str))
    if sources != {data_source}:
        return None, (f"{results_dir}/ ranks models of {', '.join(sorted(sources))} data, the test scans here are "
                      f"{data_source}: rebuild it (`dvc repro aggregate`)")  # fmt: skip
    table = read_table(results_dir / "volumes.csv", ("run", "model", "volume", *tuple(ranking.RANKED)), remedy)
    table = table[table["run"].isin(board["id"]) & (table["run"] == table["model"])]
    ids = list(board["id"])
    scores = {}
    for metric in tuple(ranking.RANKED):
        wide = table.pivot(index="run", columns="volume", values=metric)
        if sorted(map(str, wide.columns)) != sorted(volumes) or sorted(wide.index) != sorted(ids):
            return None, f"{results_dir}/volumes.csv is for other test volumes: rebuild it (`dvc repro aggregate`)"
        scores[metric] = wide.loc[ids, volumes].to_numpy(dtype=float)
    sizes = {row.id: float(row.params_m) for row in board.itertuples() if row.params_m == row.params_m}
    return Baselines(ids, list(volumes), scores, sizes), ""
