"""Rank uncertainty, tiers, recipes, intervals and the paper's statistic, on hand-made inputs whose answers are
known."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.evaluation.metrics import mean_interval
from pipeline.results import findings, ranking
from pipeline.results.paper import table_check
from pipeline.results.recipes import Recipe, recipe_ranking
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
    assert result.exact and result.resamples == math.comb(17, 9) == 24_310  # every resample of 9 volumes
    # a and b each come first in about half of the resamples; their rank intervals both span 1-2.
    assert (rows["a"]["rank_low"], rows["a"]["rank_high"]) == (1, 2) == (rows["b"]["rank_low"], rows["b"]["rank_high"])
    assert 0.3 < rows["a"]["p_rank1"] < 0.7 and 0.3 < rows["b"]["p_rank1"] < 0.7
    assert 1.0 <= rows["a"]["p_rank1"] + rows["b"]["p_rank1"] < 1.1  # above 1 in the resamples where they tie
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
    assert result.p_rank1 == pytest.approx([1.0, 0.0]) and result.rank_median.tolist() == [1, 2]
    assert result.tier.tolist() == [1, 2] and result.tau_median == 1.0


def test_two_models_resampled_rankings_agree_or_disagree_with_the_full_one():
    """Two models whose order flips from volume to volume: the draws rank them both ways, Kendall's tau -1 and 1
    (the full ranking puts a first: its mean is higher by 0.05 / 9)."""
    a = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.55])
    result = ranking.bootstrap_ranking(["a", "b"], np.stack([a, np.full(9, 0.5)]), True, 1000, 0.95, 0)
    assert result.rank.tolist() == [1, 2] and 0 < result.p_rank1[1] < 0.5
    assert (result.tau_low, result.tau_median, result.tau_high) == (-1.0, 1.0, 1.0)


@pytest.mark.parametrize("models", [3, 4, 12])
def test_each_draws_tau_is_scipys_kendall_tau_of_its_own_ranking(models):
    """Taus computed once per distinct resampled ranking are those of every draw computed on its own, with ties
    (scores rounded to one decimal give tied ranks in the draws)."""
    scores = np.random.default_rng(models).random((models, 9)).round(1)
    sampled = ranking.resamples(9, 1000, 0, models)
    ranks = stats.rankdata(-(scores @ sampled.counts.T / 9), axis=0, method="min").astype(int)
    full = stats.rankdata(-scores.mean(axis=1), method="min").astype(int)
    chosen = np.random.default_rng(0).choice(len(sampled.weights), size=ranking.TAU_SAMPLE, p=sampled.weights)
    one_by_one = [stats.kendalltau(full, ranks[:, draw]).statistic for draw in chosen]
    assert ranking._taus(full, ranks, sampled, 0).tolist() == np.nan_to_num(one_by_one, nan=1.0).tolist()


def test_lower_is_better_for_distances_and_ties_share_the_best_rank():
    hd95 = np.array([[2.0] * 9, [5.0] * 9, [2.0] * 9])
    result = ranking.bootstrap_ranking(["x", "y", "z"], hd95, higher_better=False, draws=200, confidence=0.95, seed=0)
    assert result.rank.tolist() == [1, 3, 1] and result.tier.tolist() == [1, 2, 1]
    assert result.p_rank1 == pytest.approx([1.0, 0.0, 1.0])


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
    effect = findings.paired_effect(frame, "encoder_weights", "random", "imagenet", "dice", 0.95)
    assert effect["mean"] == pytest.approx((0.05 + 0.02 - 0.01) / 3)
    assert (effect["n"], effect["wins"], effect["losses"]) == (3, 2, 1)
    assert effect["ci_low"] is None and effect["ci_high"] is None  # 3 pairs: no interval, the count and wins
    assert effect["sign_p"] == pytest.approx(1.0)  # 2 wins of 3 is what chance gives


def test_each_gap_is_judged_from_the_two_models_own_seed_runs():
    board = pd.DataFrame({"id": ["m1", "m2", "m3", "m4"], "experiment": "lung", "status": "ok",
                          "rank": [1, 2, 3, 4], "dice": [0.90, 0.89, 0.80, 0.40]})  # fmt: skip
    seeds = {"m1": [0.90, 0.88, 0.92], "m2": [0.89, 0.91, 0.87], "m3": [0.80, 0.801, 0.799]}
    result = findings.seed_variance(board, seeds)["lung"]
    # m1-m2: Welch p = 0.58; m2-m3: runs 0.09 apart, Welch p = stats.ttest_ind(..., equal_var=False) < 0.05.
    assert stats.ttest_ind(seeds["m2"], seeds["m3"], equal_var=False).pvalue < 0.05
    assert result["top_gap_verdict"] == "not distinguishable from training noise"
    assert (result["gaps_beyond"], result["gaps_not_distinguishable"], result["gaps_not_measured"]) == (1, 1, 1)
    # No pooling: SDs of 0.02 and 0.001 are both reported.
    assert (result["sd_min"], result["sd_max"]) == (0.001, 0.02)


def test_the_seed_sd_interval_is_the_chi_square_one():
    """From 3 runs (2 degrees of freedom) the 95% interval of an SD of 1 spans 0.52 to 6.29: a factor of 12."""
    low, high = findings.sd_interval(1.0, 3, 0.95)
    assert low == pytest.approx(math.sqrt(2 / 7.377759), abs=1e-5) and high == pytest.approx(
        math.sqrt(2 / 0.050636), abs=1e-4
    )
    assert findings.sd_interval(1.0, 1, 0.95) == (None, None)


def test_the_mean_interval_is_students_t_clipped_to_the_metrics_range():
    low, high = mean_interval(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 0.95, (0.0, 10.0))
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4) x s / sqrt(n)
    assert (low, high) == pytest.approx((3 - half, 3 + half), abs=1e-5)
    assert mean_interval(np.array([0.95, 0.99, 1.0, 0.7]), 0.95)[1] == 1.0  # never past Dice 1
    assert all(math.isnan(v) for v in mean_interval(np.array([0.5]), 0.95))


def test_an_effect_gets_an_interval_only_from_five_pairs_and_an_exact_sign_test():
    def frame(differences):
        return pd.DataFrame([{"experiment": "lung", "architecture": a, "encoder": f"e{i}", "encoder_weights": "random",
                              "dice": 0.5 + (d if a == "fpn" else 0)} for i, d in enumerate(differences)
                             for a in ("unet", "fpn")])  # fmt: skip

    four = findings.paired_effect(frame([0.1, 0.2, 0.1, 0.3]), "architecture", "unet", "fpn", "dice", 0.95)
    assert four["ci_low"] is None and four["sign_p"] == pytest.approx(0.125)  # 4 of 4 wins: p = 2 / 16
    six = findings.paired_effect(frame([0.1, 0.2, 0.1, 0.3, 0.2, 0.1]), "architecture", "unet", "fpn", "dice", 0.95)
    expected = stats.t.interval(0.95, 5, loc=np.mean([0.1, 0.2, 0.1, 0.3, 0.2, 0.1]),
                                scale=stats.sem([0.1, 0.2, 0.1, 0.3, 0.2, 0.1]))  # fmt: skip
    assert (six["ci_low"], six["ci_high"]) == pytest.approx(expected, abs=1e-4)
    assert six["sign_p"] == pytest.approx(2 / 64, abs=1e-4)  # published to 4 decimals


def test_an_effect_counts_the_pairs_an_exclusion_removed():
    every = pd.DataFrame([{"experiment": "lung", "architecture": a, "encoder": e, "encoder_weights": "random",
                           "dice": 0.8, "status": "degenerate" if (a, e) == ("fpn", "r18") else "ok"}
                          for a in ("unet", "fpn") for e in ("r18", "mb", "vgg")])  # fmt: skip
    effect = findings.paired_effect(every[every["status"] == "ok"], "architecture", "unet", "fpn", "dice", 0.95,
                                    every)  # fmt: skip
    assert (effect["n"], effect["excluded_pairs"]) == (2, 1)


def _leader_and(others: list[np.ndarray]) -> np.ndarray:
    leader = np.array([0.80, 0.82, 0.78, 0.85, 0.79, 0.81, 0.83, 0.77, 0.84])
    return np.stack([leader, *[leader - other for other in others]])


def test_with_two_models_the_max_t_test_is_the_exact_paired_permutation_test():
    """Two models, 9 volumes: the 2^9 = 512 within-volume label swaps are enumerated. A model better on all 9
    volumes by a varying margin reaches the smallest two-sided p, 2/512 (the sign patterns all + and all -)."""
    scores = _leader_and([np.linspace(0.01, 0.05, 9)])
    found = ranking.separations(scores, higher_better=True)
    assert found.exact and found.permutations == 512 and found.p[0, 1] == pytest.approx(2 / 512)
    assert found.better.tolist() == [[False, True], [False, False]]
    tier, p = ranking.tiers(scores, higher_better=True)
    assert tier.tolist() == [1, 2] and math.isnan(p[0]) and p[1] == pytest.approx(2 / 512)
    # Lower is better (distances): the same decision, reversed.
    assert ranking.tiers(-scores, higher_better=False)[0].tolist() == [1, 2]


def test_models_that_trade_places_with_the_leader_stay_in_tier_one_a_model_worse_on_all_does_not():
    """Seven models that lose to the leader on some volumes and win on others (mean gap 0.0006) are not
    separated; one 0.25-0.35 worse on every volume is. Unlike the exact Wilcoxon test, whose p cannot go below
    1/512 and which Holm over more than 25 comparisons can never separate, the max-T keeps its resolution."""
    swing = np.array([0.03, -0.03, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.005])
    scores = _leader_and([np.roll(swing, i) for i in range(7)])
    tier, p = ranking.tiers(scores, higher_better=True)
    assert tier.tolist() == [1] * 8 and (p[1:] >= 0.05).all()
    with_worse = _leader_and([np.roll(swing, i) for i in range(7)] + [np.linspace(0.25, 0.35, 9)])
    tier, p = ranking.tiers(with_worse, higher_better=True)
    assert tier.tolist() == [1] * 8 + [2] and p[8] < 0.05


def test_tiers_rank_sets_and_the_significance_map_are_one_set_of_decisions():
    rng = np.random.default_rng(3)
    volume = rng.normal(0.85, 0.05, 9)
    scores = volume + rng.normal(0, 0.01, (6, 9)) - np.array([0, 0, 0.001, 0.2, 0.2, 0.4])[:, None]
    result = ranking.bootstrap_ranking([f"m{i}" for i in range(6)], scores, True, 1000, 0.95, 0)
    assert result.tier.tolist() == [1, 1, 1, 2, 2, 3]
    # Rank sets: the three equals may rank 1-3; the 0.2 pair 4-5 (beaten by the three, beating the last).
    assert result.rank_low.tolist() == [1, 1, 1, 4, 4, 6] and result.rank_high.tolist() == [3, 3, 3, 5, 5, 6]
    significance = result.significance(top=6)
    for i, row in enumerate(significance["p"]):
        for j, p in enumerate(row):
            if p is not None:
                assert (p < 0.05) == bool(
                    result.separations.better[
                        result.ids.index(significance["ids"][i]), result.ids.index(significance["ids"][j])
                    ]
                )
    assert significance["comparisons"] == 15


def test_tiers_hold_their_level_when_the_leader_is_chosen_on_the_same_volumes():
    """A small calibration (the full one: python -m benchmarks.calibration): 10 equal models, 9 volumes, 300
    replications; the rule that tested a selected leader one-sided separated someone 18% of the time."""
    rng = np.random.default_rng(11)
    false = 0
    for _ in range(300):
        scores = rng.normal(0.85, 0.05, 9) + rng.normal(0, 0.02, (10, 9))
        false += ranking.tiers(scores, True, permutations=200, seed=int(rng.integers(1 << 30)))[0].max() > 1
    assert false / 300 <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / 300)


def test_among_200_models_ten_clearly_worse_ones_are_separated():
    rng = np.random.default_rng(5)
    scores = rng.normal(0.85, 0.05, 9) + rng.normal(0, 0.02, (200, 9))
    scores[:10] -= 0.15
    tier, _ = ranking.tiers(scores, True, permutations=1000)
    assert (tier[:10] > 1).all() and (tier[10:] == 1).all()


def test_exact_resamples_are_every_multiset_with_its_probability():
    sampled = ranking.resamples(3, draws=10, seed=0)
    assert sampled.exact and len(sampled.weights) == math.comb(5, 3) == 10
    assert sampled.weights.sum() == pytest.approx(1.0) and (sampled.counts.sum(axis=1) == 3).all()
    # (3, 0, 0) has probability 1/27; (1, 1, 1) has 3!/27.
    assert sorted(sampled.weights)[0] == pytest.approx(1 / 27) and max(sampled.weights) == pytest.approx(6 / 27)
    many = ranking.resamples(9, draws=100, seed=0, models=1000)  # 1000 models x 24,310 resamples: drawn
    assert not many.exact and len(many.weights) == ranking.MIN_DRAWS and ranking.p_rank1_decimals(many) == 2


def test_a_recipes_interval_is_students_t_on_its_seed_degrees_of_freedom():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, 9)
    steady = [Recipe(("lung", "unet", f"e{i}", "random"),
                     np.stack([base + 0.02 * i + d for d in (0, 0.005, -0.005)]), 0) for i in range(5)]  # fmt: skip
    scattered = Recipe(("lung", "fpn", "e9", "random"), np.stack([base + 0.05, base - 0.25, base + 0.08]), 1)
    rows = {row["encoder"]: row for row in recipe_ranking([*steady, scattered], True, 0.95)}
    run_means = scattered.scores.mean(axis=1)
    expected = stats.t.interval(0.95, 2, loc=run_means.mean(), scale=stats.sem(run_means))
    assert (rows["e9"]["dice_ci_low"], rows["e9"]["dice_ci_high"]) == pytest.approx(
        (max(0, expected[0]), min(1, expected[1]))
    )
    assert rows["e9"]["failed_seeds"] == 1 and rows["e9"]["seed_sd"] > 0.1 and rows["e0"]["seed_sd"] < 0.01
    # The scattered recipe cannot be told from anyone (rank set 1-6, tier 1); steady recipes 0.02 apart can.
    assert (rows["e9"]["rank_low"], rows["e9"]["rank_high"], rows["e9"]["tier"]) == (1, 6, 1)
    assert rows["e4"]["tier"] == 1 and rows["e0"]["tier"] > 1


def test_spearmans_p_is_exact_for_few_models():
    """4 points in the same order: rho 1, and 2 of the 24 pairings are as extreme: p = 0.083 (the t
    approximation says 0.000)."""
    rho, p, method = findings.spearman([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4])
    assert (rho, method) == (1.0, "exact") and p == pytest.approx(2 / 24)


def test_spearmans_permutation_p_equals_scipys_spearman_per_pairing_with_ties():
    """Ranks once, every pairing at once: the same p as scipy computing spearmanr on each pairing (ties in
    both variables, 6 points: all 720 pairings), and a p of 1 where x's order says nothing about y."""
    from scipy import stats

    x, y = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0]), np.array([0.2, 0.7, 0.1, 0.8, 0.8, 0.3])
    slow = stats.permutation_test((x,), lambda a: stats.spearmanr(a, y).statistic, permutation_type="pairings",
                                  vectorized=False, n_resamples=np.inf).pvalue  # fmt: skip
    rho, p, _ = findings.spearman(x, y)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic) and p == pytest.approx(slow)
    assert findings.spearman([1, 2, 3], [5, 4, 5])[1] == pytest.approx(1.0)


def test_the_median_interval_comes_from_order_statistics():
    values = np.arange(1.0, 10.0)  # 9 values: [X(2), X(8)] covers 1 - 2 * 10/512 = 96.1%
    low, high, coverage = findings.median_interval(values, 0.95)
    assert (low, high) == (2.0, 8.0) and coverage == pytest.approx(1 - 20 / 512)
    assert findings.median_interval(values[:5], 0.95) == (None, None, None)  # 5 values reach only 93.75%


def test_better_or_worse_needs_the_interval_beyond_the_relevant_difference():
    assert findings.relevance_verdict(0.02, 0.05, 0.01) == "better"
    assert findings.relevance_verdict(0.005, 0.05, 0.01) == findings.NO_RELEVANT
    assert findings.relevance_verdict(-0.05, -0.02, 0.01) == "worse"
    assert findings.relevance_verdict(None, None, 0.01).startswith("too few")


def test_the_papers_table_contradicts_its_text_in_one_row_which_is_found():
    checks = {(c["experiment"], c["architecture"]): c for c in table_check(ROOT / "reference")}
    lung = checks[("lung", "unet")]
    assert (lung["computed"], lung["stated"]) == ({"mean": 93.78, "std": 0.97}, {"mean": 93.77, "std": 0.95})
    typo = lung["probable_typo"]
    # With every printed value's rounding allowed for, three rows could explain the summary; resnet18 alone
    # prints more than the best Dice the text states (95.58), which lies in its implied range.
    assert (typo["encoder"], typo["table"]) == ("resnet18", 95.88) and len(lung["candidates"]) == 3
    assert (typo["implied_low"], typo["implied_high"]) == (95.53, 95.73) and "95.58" in typo["why"]
    assert checks[("lesion_a", "unet")]["agrees"] and "probable_typo" not in checks[("lesion_a", "unet")]
