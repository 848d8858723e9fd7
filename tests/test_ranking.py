"""Rank uncertainty, tiers and the paper's statistic, on hand-made inputs whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from pipeline.results import findings, ranking
from tests.conftest import ROOT

IDS = ["a", "b", "worse"]


def _scores() -> np.ndarray:
    """Per-volume Dice of three models on 9 volumes: a and b trade places volume by volume (equal means),
    'worse' is 0.2 below both on every volume."""
    base = np.array([0.80, 0.82, 0.78, 0.85, 0.79, 0.81, 0.83, 0.77, 0.84])
    swing = np.array([0.03, -0.03, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0])
    return np.stack([base + swing, base - swing, base - 0.2])


def test_indistinguishable_models_share_tier_one_and_a_clearly_worse_one_does_not():
    result = ranking.bootstrap_ranking(IDS, _scores(), higher_better=True, draws=2000, confidence=0.95, seed=1)
    rows = {row["id"]: row for row in result.rows()}
    assert rows["a"]["tier"] == rows["b"]["tier"] == 1 and rows["worse"]["tier"] == 2
    # a and b each come first in about half of the draws; their rank intervals both span 1-2.
    assert (rows["a"]["rank_low"], rows["a"]["rank_high"]) == (1, 2) == (rows["b"]["rank_low"], rows["b"]["rank_high"])
    assert 0.3 < rows["a"]["p_rank1"] < 0.7 and 0.3 < rows["b"]["p_rank1"] < 0.7
    assert 1.0 <= rows["a"]["p_rank1"] + rows["b"]["p_rank1"] < 1.1  # above 1 in the draws where they tie
    # 'worse' is last in every draw: a degenerate interval, never first.
    assert (rows["worse"]["rank_low"], rows["worse"]["rank_high"], rows["worse"]["p_rank1"]) == (3, 3, 0.0)
    # The full ranking ties a and b (equal means); a draw that orders them has Kendall's tau-b 2 / sqrt(6) with it.
    assert result.rank.tolist() == [1, 1, 3]
    assert result.tau_median == pytest.approx(2 / 6**0.5) and result.tau_high == pytest.approx(1.0)
    blobs = result.blobs(top=2)
    assert [blob["id"] for blob in blobs] == list(np.array(IDS)[np.argsort(result.rank, kind="stable")][:2])
    assert sum(blobs[0]["ranks"].values()) == pytest.approx(1.0)


def test_the_same_volumes_are_drawn_for_every_model():
    """Two models that differ by a constant on every volume are separated in every draw: with independent
    draws per model, the volume-to-volume spread would make their intervals overlap."""
    base = np.linspace(0.3, 0.9, 9)
    result = ranking.bootstrap_ranking(["high", "low"], np.stack([base + 0.01, base]), True, 1000, 0.95, 0)
    assert result.rank_high.tolist() == [1, 2] and result.rank_low.tolist() == [1, 2]
    assert result.tier.tolist() == [1, 2] and result.tau_median == 1.0


def test_lower_is_better_for_distances_and_ties_share_the_best_rank():
    hd95 = np.array([[2.0] * 9, [5.0] * 9, [2.0] * 9])
    result = ranking.bootstrap_ranking(["x", "y", "z"], hd95, higher_better=False, draws=200, confidence=0.95, seed=0)
    assert result.rank.tolist() == [1, 3, 1] and result.tier.tolist() == [1, 2, 1]
    assert result.p_rank1.tolist() == [1.0, 0.0, 1.0]


def test_the_ranking_refuses_missing_scores():
    with pytest.raises(ValueError, match="defined for every model"):
        ranking.bootstrap_ranking(["a"], np.array([[0.5, np.nan]]), True, 10, 0.95, 0)


def test_nine_volumes_can_give_a_one_sided_wilcoxon_p_of_one_in_512_at_best():
    assert ranking.smallest_wilcoxon_p(9) == pytest.approx(1 / 512)
    # After Holm's correction over m comparisons the smallest p is multiplied by m: 26 pairs already reach 0.05.
    assert 26 * ranking.smallest_wilcoxon_p(9) > 0.05


def test_the_paper_statistic_gives_back_the_papers_own_means_from_its_table():
    """Applied to the surviving rows of Table II, the paper's statistic (ImageNet models, population std)
    reproduces the means its text states; pooling both initialisations with ddof 1 does not."""
    table = pd.read_csv(ROOT / "reference" / "paper_table2_metrics.csv")
    rows = table[(table["architecture"] == "unet") & (table["experiment"] == "lesion_a")]
    ours = findings.paper_statistic(rows.loc[rows["encoder_weights"] == "imagenet", "dice"])
    assert (ours["mean"], ours["std"], ours["n"]) == (85.84, 0.64, 25)  # the paper: 85.84 +- 0.64
    pooled = findings.sample_stats(rows["dice"])
    assert (round(pooled["mean"], 2), round(pooled["std"], 2)) == (85.08, 1.29)  # the spurious gap
    lesion_b = findings.paper_statistic(
        table.loc[(table["architecture"] == "unet") & (table["experiment"] == "lesion_b")
                  & (table["encoder_weights"] == "imagenet"), "dice"]
    )  # fmt: skip
    assert (lesion_b["mean"], lesion_b["std"]) == (86.86, 0.83)  # the paper: 86.86 +- 0.83


def test_paired_effects_pair_identical_models_and_count_wins():
    frame = pd.DataFrame(
        [{"experiment": "lung", "architecture": "unet", "encoder": e, "encoder_weights": w, "dice": d}
         for e, w, d in [("r18", "random", 0.80), ("r18", "imagenet", 0.85), ("mb", "random", 0.70),
                         ("mb", "imagenet", 0.72), ("vgg", "random", 0.90), ("vgg", "imagenet", 0.89)]]
    )  # fmt: skip
    effect = findings.paired_effect(frame, "encoder_weights", "random", "imagenet", "dice", (500, 0.95, 0))
    assert effect["mean"] == pytest.approx((0.05 + 0.02 - 0.01) / 3)
    assert (effect["n"], effect["wins"], effect["losses"]) == (3, 2, 1)
    assert effect["ci_low"] <= effect["mean"] <= effect["ci_high"]


def test_seed_spread_against_the_gaps_of_the_ranking():
    board = pd.DataFrame({"id": ["m1", "m2", "m3"], "experiment": "lung", "status": "ok",
                          "rank": [1, 2, 3], "dice": [0.90, 0.89, 0.70]})  # fmt: skip
    seeds = {"m1": [0.90, 0.88, 0.92], "m2": [0.89, 0.91, 0.87]}  # both: sample sd 0.02
    result = findings.seed_variance(board, seeds)["lung"]
    assert result["pooled_sd"] == pytest.approx(0.02) and result["noise_95"] == pytest.approx(
        1.96 * 2**0.5 * 0.02, 1e-3
    )
    assert result["top_gap"] == pytest.approx(0.01) and not result["top_gap_beyond_noise"]
    assert (result["adjacent_gaps"], result["gaps_beyond_noise"]) == (2, 1)  # only 0.89 -> 0.70 exceeds it
