"""aggregate on hand-made records: the leaderboard's columns, fixed bytes, findings by name, no mixed sources."""

import csv
import json

import pytest

from pipeline.aggregate import COLUMNS, aggregate
from pipeline.cells import grid_cells
from pipeline.errors import PipelineError
from tests.conftest import ROOT

CELLS = grid_cells(["lesion_a", "lesion_b"], ["unet"], ["resnet18", "vgg11"], ["random", "imagenet"])


def _records(tmp_path, source=lambda cell: "phantom"):
    models, evaluation = tmp_path / "models", tmp_path / "evaluation"
    for index, cell in enumerate(CELLS):
        (models / cell.id).mkdir(parents=True)
        (evaluation / cell.id).mkdir(parents=True)
        train = {"id": cell.id, "experiment": cell.experiment, "architecture": cell.architecture,
                 "encoder": cell.encoder, "encoder_weights": cell.weights, "status": "ok", "error": "",
                 "data_source": source(cell), "profile": "tiny", "params": 14_321_937, "trained_params": 14_321_937,
                 "gflops": 0.1654, "train_images_per_s": 20.0, "infer_images_per_s": 100.0, "epochs": 2,
                 "best_epoch": 2, "device": "cpu"}  # fmt: skip
        dice = 0.5 + 0.01 * index + (0.1 if cell.experiment == "lesion_b" else 0.0)
        metrics = {"dice": dice, "dice_ci_low": dice - 0.05, "dice_ci_high": dice + 0.05, "sensitivity": 0.6,
                   "specificity": 0.99, "precision": 0.7, "slice_dice": dice, "pooled_dice": dice,
                   "paper_sensitivity": 70.0, "paper_specificity": 99.0, "paper_dice": 100 * dice}  # fmt: skip
        (models / cell.id / "train.json").write_text(json.dumps(train))
        (evaluation / cell.id / "metrics.json").write_text(json.dumps(metrics))
        (evaluation / cell.id / "volumes.csv").write_text("volume,slices,dice\n1.nii.gz,3,0.5\n")
    return models, evaluation


def test_leaderboard_columns_order_and_fixed_bytes(tmp_path):
    models, evaluation = _records(tmp_path)
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        aggregate(CELLS, models, evaluation, tmp_path / name, ROOT / "reference")
    first = (tmp_path / "first" / "leaderboard.csv").read_bytes()
    assert first == (tmp_path / "second" / "leaderboard.csv").read_bytes()
    rows = list(csv.DictReader(first.decode().splitlines()))
    assert list(rows[0]) == list(COLUMNS)
    assert [row["id"] for row in rows] == [cell.id for cell in CELLS]
    assert rows[0]["dice"] == "0.5000" and rows[0]["params_m"] == "14.32" and rows[0]["paper_dice"] == "50.00"
    # The paper's own Dice where Table II has the row (Unet-resnet18, random, lesion A: 82.26).
    assert rows[0]["paper_reported_dice"] == "82.26"
    assert (tmp_path / "first" / CELLS[0].id / "volumes.csv").exists()
    # The model's record carries that row's sensitivity and specificity too (for its page).
    record = json.loads((tmp_path / "first" / CELLS[0].id / "metrics.json").read_text())
    assert (record["paper_reported_sensitivity"], record["paper_reported_specificity"]) == (80.69, 99.86)


def test_findings_by_name(tmp_path):
    models, evaluation = _records(tmp_path)
    (tmp_path / "out").mkdir()
    aggregate(CELLS, models, evaluation, tmp_path / "out", ROOT / "reference")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["data_source"], summary["profile"], summary["models"]) == ("phantom", "tiny", 8)
    dice = summary["dice"]
    assert dice["best_model"]["lesion_b"]["id"] == "lesion_b-unet-vgg11-imagenet"
    assert dice["lesion_b_vs_lesion_a"]["lesion_b_minus_lesion_a"]["mean"] == pytest.approx(0.14)
    assert dice["lesion_b_vs_lesion_a"]["lesion_b_minus_lesion_a"]["wins"] == 4
    assert dice["imagenet_vs_random"]["lesion_a"]["imagenet_minus_random"]["mean"] == pytest.approx(0.01)
    assert summary["paper"]["mean_dice_by_experiment"]["lesion_b"] == {"mean": 86.44, "std": 1.04}
    headline = json.loads((tmp_path / "out" / "headline.json").read_text())
    assert headline["lesion_a"]["models"] == 4


def test_results_of_different_data_sources_never_mix(tmp_path):
    models, evaluation = _records(tmp_path, source=lambda cell: "download" if cell.encoder == "vgg11" else "phantom")
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match="different data sources"):
        aggregate(CELLS, models, evaluation, tmp_path / "out", ROOT / "reference")
