"""Metrics on hand-made masks, including empty slices and the published code's quirks."""

import numpy as np
import pytest

from pipeline.evaluation import metrics


def _masks():
    """Four 1x10 slices: a partial hit, an empty slice predicted empty, an empty slice with a false positive,
    and a missed lesion."""
    truth = np.zeros((4, 1, 10), dtype=np.uint8)
    prediction = np.zeros((4, 1, 10), dtype=np.uint8)
    truth[0, 0, :4] = 1
    prediction[0, 0, 2:6] = 1  # tp 2, fp 2, fn 2, tn 4
    prediction[2, 0, 9] = 1  # tp 0, fp 1, fn 0, tn 9
    truth[3, 0, :2] = 1  # tp 0, fp 0, fn 2, tn 8
    return prediction, truth


def test_confusion_counts():
    counts = metrics.confusion(*_masks())
    assert counts.tp.tolist() == [2, 0, 0, 0]
    assert counts.fp.tolist() == [2, 0, 1, 0]
    assert counts.fn.tolist() == [2, 0, 0, 2]
    assert counts.tn.tolist() == [4, 10, 9, 8]


def test_empty_slice_rule():
    per_slice = metrics.scores(metrics.confusion(*_masks()))
    assert per_slice["dice"].tolist() == [0.5, 1.0, 0.0, 0.0]  # empty and predicted empty: 1
    assert np.isnan(per_slice["sensitivity"][[1, 2]]).all()  # no lesion to find: undefined
    assert per_slice["sensitivity"][[0, 3]].tolist() == [0.5, 0.0]
    # Precision: undefined with nothing to find and nothing found; 0 when a target is missed entirely.
    assert per_slice["precision"].tolist()[0] == 0.5 and np.isnan(per_slice["precision"][1])
    assert per_slice["precision"][[2, 3]].tolist() == [0.0, 0.0]
    assert per_slice["specificity"].tolist() == pytest.approx([4 / 6, 1.0, 0.9, 1.0])


def test_per_slice_means_skip_undefined_scores():
    means = metrics.mean_scores(metrics.confusion(*_masks()))
    assert means["dice"] == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    assert means["sensitivity"] == pytest.approx((0.5 + 0.0) / 2)
    assert means["precision"] == pytest.approx((0.5 + 0.0 + 0.0) / 3)


def test_pooled_differs_from_per_slice():
    pooled = metrics.pooled_scores(metrics.confusion(*_masks()))
    # tp 2, fp 3, fn 4, tn 31 over all voxels.
    assert pooled["dice"] == pytest.approx(4 / (4 + 3 + 4))
    assert pooled["sensitivity"] == pytest.approx(2 / 6)
    assert pooled["precision"] == pytest.approx(2 / 5)
    assert pooled["specificity"] == pytest.approx(31 / 34)
    assert pooled["dice"] != pytest.approx(metrics.mean_scores(metrics.confusion(*_masks()))["dice"])


def test_paper_compatible_metrics_reproduce_the_published_quirks():
    paper = metrics.paper_scores(metrics.confusion(*_masks()))
    # Empty-truth slices (1 and 2) score 1 whatever the prediction; "sensitivity" is really precision
    # tp/(tp+fp), "specificity" really the negative predictive value tn/(tn+fn).
    sensitivity = [2 / (4 + 1e-6), 1, 1, 0 / (0 + 1e-6)]
    specificity = [4 / (6 + 1e-6), 1, 1, 8 / (10 + 1e-6)]
    dice = [0.5, 1, 1, 0]
    assert paper["paper_sensitivity"] == pytest.approx(100 * np.mean(sensitivity))
    assert paper["paper_specificity"] == pytest.approx(100 * np.mean(specificity))
    assert paper["paper_dice"] == pytest.approx(100 * np.mean(dice))


def test_all_empty_volume_predicted_empty_is_perfect():
    empty = np.zeros((3, 4, 4), dtype=np.uint8)
    volume = metrics.scores(metrics.confusion(empty, empty).total())
    assert volume["dice"][0] == 1.0 and np.isnan(volume["sensitivity"][0]) and np.isnan(volume["precision"][0])


def test_a_volume_with_a_target_and_no_prediction_has_precision_zero():
    truth = np.zeros((3, 4, 4), dtype=np.uint8)
    truth[1, 1:3, 1:3] = 1
    volume = metrics.scores(metrics.confusion(np.zeros_like(truth), truth).total())
    assert (volume["dice"][0], volume["sensitivity"][0], volume["precision"][0]) == (0.0, 0.0, 0.0)
    assert metrics.defined(np.array([0.5, np.nan, 0.0])) == 2


def test_the_interval_of_a_mean_brackets_it_and_stays_in_the_metrics_range():
    values = np.array([0.6, 0.7, 0.8, 0.75, 0.65, np.nan])  # NaN: a volume where the score is undefined
    low, high = metrics.mean_interval(values, confidence=0.95)
    assert low < np.nanmean(values) < high and low >= 0 and high <= 1
    assert metrics.mean_interval(np.array([0.5] * 4), 0.95) == (0.5, 0.5)
    low, high = metrics.mean_interval(np.array([0.0, 0.0, 0.1]), 0.95)
    assert low == 0.0  # clipped: a Dice interval never reaches below 0
