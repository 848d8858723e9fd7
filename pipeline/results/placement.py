"""Where an outside entry stands among the grid's checkpoints, and how it compares with the ones that matter.

The study's purpose for its baselines: a new model is compared "with models with the same number of
parameters". For each submission, against the leader of the grid's checkpoints and against every grid
checkpoint of similar size (parameters within a factor of ``SIZE_FACTOR`` either way), on the paired test
volumes: the mean difference, wins and losses, and whether the difference clears the minimal relevant
difference (params ``ranking.relevant_difference``, Dice): an exact two-sided Wilcoxon signed-rank test of the
differences shifted by that margin, against the side the mean points to (zero differences dropped),
Holm-adjusted over that entry's own comparisons (and only those). "better"/"worse" needs p < alpha; otherwise
"no relevant difference shown". The population is these checkpoints on these volumes.

Its place (rank, rank set, tier) is computed among the grid's checkpoints plus this entry alone, by the same
procedure as the leaderboard's (pipeline.results.ranking): the grid's own tiers are computed without any
submission, so a submission never moves a grid model, and the dry run of ``pipeline.submit`` and the
leaderboard rank an entry among the same models.
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


def similar_size(params_m: float | None, baselines: Baselines) -> list[str]:
    """The baselines within ``SIZE_FACTOR`` of ``params_m`` parameters, closest first (none if unknown)."""
    if params_m is None or not params_m > 0:
        return []
    close = [(abs(math.log(size / params_m)), model) for model, size in baselines.params_m.items()
             if size and size > 0 and abs(math.log(size / params_m)) <= math.log(SIZE_FACTOR)]  # fmt: skip
    return [model for _, model in sorted(close)]


SIMILAR_SHOWN = 5  # baselines of similar size a submission is compared with (closest first)


def compared_with(baselines: Baselines, params_m: float | None) -> list[str]:
    """What a submission is compared with: the grid's leader on Dice, then up to ``SIMILAR_SHOWN`` checkpoints of
    similar size, closest first (the leaderboard and the dry run use the same list)."""
    return list(dict.fromkeys([leader(baselines), *similar_size(params_m, baselines)[:SIMILAR_SHOWN]]))


def leader(baselines: Baselines, metric: str = "dice", higher_better: bool = True) -> str:
    means = baselines.scores[metric].mean(axis=1)
    return baselines.ids[int(np.argmax(means) if higher_better else np.argmin(means))]


def margin_p(difference: np.ndarray, margin: float) -> float:
    """Two-sided p that the mean difference lies beyond +-``margin``: the exact Wilcoxon test of the
    differences moved towards 0 by ``margin`` on the side their mean points to (1 when nothing is left)."""
    shifted = difference - margin if difference.mean() > 0 else difference + margin
    if not np.any(shifted != 0) or (difference.mean() == 0):
        return 1.0
    side = "greater" if difference.mean() > 0 else "less"
    return float(min(1.0, 2 * stats.wilcoxon(shifted, alternative=side, method="exact", zero_method="wilcox").pvalue))


def comparisons(entry: np.ndarray, baselines: Baselines, against: list[str], metric: str = "dice",
                higher_better: bool = True, margin: float = 0.01, alpha: float = ALPHA) -> list[dict]:  # fmt: skip
    """The entry against each of ``against`` on ``metric``, Holm-adjusted over these comparisons."""
    against = list(dict.fromkeys(against))
    if not against:
        return []
    rows, p_values = [], []
    for model in against:
        other = baselines.scores[metric][baselines.ids.index(model)]
        better = (entry > other) if higher_better else (entry < other)
        worse = (entry < other) if higher_better else (entry > other)
        p_values.append(margin_p(np.asarray(entry, dtype=float) - other, margin))
        rows.append({"against": model, "metric": metric, "difference": round(float(np.mean(entry - other)), 6),
                     "wins": int(better.sum()), "losses": int(worse.sum()), "pairs": len(entry),
                     "params_m": baselines.params_m.get(model)})  # fmt: skip
    adjusted = ranking.holm(np.array(p_values))
    for row, p, p_holm in zip(rows, p_values, adjusted, strict=True):
        sign = row["difference"] if higher_better else -row["difference"]
        verdict = "no relevant difference shown" if p_holm >= alpha else ("better" if sign > 0 else "worse")
        row.update(p=round(p, 6), p_holm=round(float(p_holm), 6), verdict=verdict, margin=margin)
    return rows


def place(name: str, entry: dict[str, np.ndarray], baselines: Baselines, ranked: dict[str, bool],
          settings: ranking.RankSettings) -> dict[str, dict]:  # fmt: skip
    """Per metric: the entry's row of the ranking of the baselines plus itself (rank, rank set, median rank,
    P(rank 1), tier and its p), and how many models that ranking holds."""
    out = {}
    for metric, higher in ranked.items():
        ids = [*baselines.ids, name]
        scores = np.vstack([baselines.scores[metric], entry[metric][None, :]])
        result = ranking.bootstrap_ranking(ids, scores, higher, settings.draws, settings.confidence, settings.seed,
                                           settings.permutations)  # fmt: skip
        out[metric] = {**result.rows()[-1], "models": len(ids), "p_decimals": result.p_decimals}
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
