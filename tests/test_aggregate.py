"""aggregate on hand-made records: the leaderboard's columns, fixed bytes, statuses, ranks, seeds, findings."""

import csv
import json

import pandas as pd
import pytest

from pipeline.core import profiles
from pipeline.core.config import parse_params
from pipeline.core.errors import DataError, PipelineError
from pipeline.results import findings
from pipeline.results.aggregate import COLUMNS, aggregate
from tests.conftest import ROOT, drop_key

GRID = {"experiments": ["lesion_a", "lesion_b"], "architectures": ["unet"], "encoders": ["resnet18", "vgg11"],
        "weights": ["random", "imagenet"]}  # fmt: skip
VOLUMES = 9


def _params(repeats=None):
    raw = profiles.compose("tiny", ROOT / "conf")
    raw["grid"] = GRID
    raw["repeats"] = repeats or {"models": [], "seeds": []}
    raw["evaluate"]["bootstrap_samples"] = 200
    return parse_params(raw)


def _write_run(models, evaluation, run_id, cell, dice, source="phantom", flat_loss=False, predicts=True, seed=0):
    (models / run_id).mkdir(parents=True)
    (evaluation / run_id).mkdir(parents=True)
    experiment, architecture, encoder, weights = cell
    train = {"id": run_id, "model_id": run_id.split("~")[0], "experiment": experiment, "architecture": architecture,
             "encoder": encoder, "encoder_weights": weights, "status": "ok", "error": "", "data_source": source,
             "profile": "tiny", "params": 14_321_937, "trained_params": 14_321_937, "gflops": 0.1654,
             "train_images_per_s": 20.0, "infer_images_per_s": 100.0, "epochs": 2, "best_epoch": 2, "device": "cpu",
             "base_seed": seed, "seed": 1000 + seed, "null_val_loss": 1.0,
             "best_val_loss": 1.0 if flat_loss else 0.4, "checkpoint": {"file": "model.safetensors", "bytes": 1,
             "sha256": "0" * 64, "md5": "0" * 32}}  # fmt: skip
    losses = [1.0, 1.0] if flat_loss else [0.6, 0.4]
    history = "epoch,train_loss,val_loss,train_seconds,val_seconds\n" + "".join(
        f"{e + 1},{loss},{loss},1.0,0.1\n" for e, loss in enumerate(losses)
    )
    per_volume = [min(1.0, max(0.0, dice + 0.01 * ((v % 3) - 1))) for v in range(VOLUMES)]
    metrics = {"id": run_id, "status": "ok", "error": "", "key": "k", "dice": dice, "dice_ci_low": max(0, dice - 0.05),
               "dice_ci_high": min(1, dice + 0.05), "nsd": dice, "nsd_ci_low": max(0, dice - 0.05),
               "nsd_ci_high": min(1, dice + 0.05),
               "hd95": 10 * (1 - dice), "hd95_ci_low": 1.0, "hd95_ci_high": 9.0, "sensitivity": 0.6,
               "specificity": 0.99, "precision": 0.7, "precision_volumes": VOLUMES, "slice_dice": dice,
               "pooled_dice": dice, "paper_sensitivity": 70.0, "paper_specificity": 99.0,
               "paper_dice": 100 * dice, "test_volumes": [f"{v + 1}.nii.gz" for v in range(VOLUMES)]}  # fmt: skip
    volumes = "volume,slices,dice,sensitivity,specificity,precision,nsd,hd95,predicted_voxels,target_voxels\n"
    volumes += "".join(
        f"{v + 1}.nii.gz,3,{d},0.6,0.99,0.7,{d},{10 * (1 - d)},{100 if predicts else 0},120\n"
        for v, d in enumerate(per_volume)
    )
    (models / run_id / "train.json").write_text(json.dumps(train))
    (models / run_id / "history.csv").write_text(history)
    (evaluation / run_id / "metrics.json").write_text(json.dumps(metrics))
    (evaluation / run_id / "volumes.csv").write_text(volumes)


def _records(tmp_path, params, source=lambda cell: "phantom", **special):
    """One run per model of the grid: Dice rising with its position; ``special`` maps ids to keyword changes."""
    models, evaluation = tmp_path / "models", tmp_path / "evaluation"
    for index, cell in enumerate(params.grid.cells()):
        dice = 0.5 + 0.01 * index + (0.1 if cell.experiment == "lesion_b" else 0.0)
        options = special.get(cell.id, {})
        key = (cell.experiment, cell.architecture, cell.encoder, cell.weights)
        _write_run(models, evaluation, cell.id, key, options.pop("dice", dice), source(cell), **options)
    return models, evaluation


def _aggregate(tmp_path, params, models, evaluation, name="out"):
    out = tmp_path / name
    out.mkdir()
    aggregate(params, models, evaluation, out, ROOT / "reference", tmp_path / "no-speed.json")
    return out


def _rows(out):
    return {row["id"]: row for row in csv.DictReader((out / "leaderboard.csv").read_text().splitlines())}


def test_leaderboard_columns_order_and_fixed_bytes(tmp_path):
    params = _params()
    models, evaluation = _records(tmp_path, params)
    first, second = (_aggregate(tmp_path, params, models, evaluation, name) for name in ("first", "second"))
    text = (first / "leaderboard.csv").read_bytes()
    assert text == (second / "leaderboard.csv").read_bytes()
    rows = list(csv.DictReader(text.decode().splitlines()))
    assert list(rows[0]) == list(COLUMNS)
    assert [row["id"] for row in rows] == [cell.id for cell in params.grid.cells()]
    assert rows[0]["dice"] == "0.5000" and rows[0]["params_m"] == "14.32" and rows[0]["paper_dice"] == "50.00"
    assert rows[0]["nsd"] == "0.5000" and rows[0]["hd95"] == "5.00" and rows[0]["status"] == "ok"
    # The paper's own Dice where Table II has the row (Unet-resnet18, random, lesion A: 82.26).
    assert rows[0]["paper_reported_dice"] == "82.26"
    # Dice rises with the position in the grid: the last model of each experiment leads it.
    assert (rows[3]["rank"], rows[3]["rank_low"], rows[3]["tier"]) == ("1", "1", "1")
    assert rows[0]["rank"] == "4" and float(rows[0]["p_rank1"]) == 0.0
    assert (first / params.grid.cells()[0].id / "volumes.csv").exists()
    record = json.loads((first / params.grid.cells()[0].id / "metrics.json").read_text())
    assert (record["paper_reported_sensitivity"], record["paper_reported_specificity"]) == (80.69, 99.86)
    ranks = list(csv.DictReader((first / "rankings.csv").read_text().splitlines()))
    assert {row["metric"] for row in ranks} == {"dice", "nsd", "hd95"} and len(ranks) == 3 * 8


def test_findings_by_name(tmp_path):
    params = _params()
    models, evaluation = _records(tmp_path, params)
    summary = json.loads((_aggregate(tmp_path, params, models, evaluation) / "summary.json").read_text())
    assert (summary["data_source"], summary["profile"], summary["models"]) == ("phantom", "tiny", 8)
    assert summary["leaders"]["lesion_b"]["id"] == "lesion_b-unet-vgg11-imagenet"
    effects = {(e["effect"], e["experiment"]): e for e in summary["effects"]}
    lesions = effects[("lesion B - lesion A", "lesion_a, lesion_b")]
    assert lesions["mean"] == pytest.approx(0.14) and (lesions["n"], lesions["wins"]) == (4, 4)
    assert effects[("ImageNet - random", "lesion_a")]["mean"] == pytest.approx(0.01)
    # The paper's statistic: paper-compatible Dice of the ImageNet models, population std, beside its number.
    lesion_a = summary["paper_comparison"]["lesion_a"]["all"]
    assert lesion_a["ours"] == {"mean": 52.0, "std": 1.0, "n": 2}  # models 2 and 4: 51 and 53, ddof 0 (not 1.41)
    assert lesion_a["paper"] == {"mean": 85.47, "std": 1.17}
    assert summary["paper"]["best"]["lung"]["stated"]["dice"] == 95.58
    assert summary["paper"]["best"]["lung"]["best_table_row"]["dice"] == 95.88
    assert summary["dice"]["by_experiment"]["lesion_a"]["median"] == pytest.approx(0.515)
    assert summary["smallest_wilcoxon_p"] == pytest.approx(1 / 512) and summary["test_volumes"] == 9
    headline = json.loads((tmp_path / "out" / "headline.json").read_text())
    assert headline["lesion_a"]["models"] == 4


def test_runs_that_did_not_learn_are_judged_on_validation_alone(tmp_path):
    params = _params()
    flat, silent = "lesion_a-unet-resnet18-random", "lesion_a-unet-vgg11-random"
    models, evaluation = _records(
        tmp_path, params, **{flat: {"flat_loss": True}, silent: {"predicts": False, "dice": 0.0}}
    )
    out = _aggregate(tmp_path, params, models, evaluation)
    rows = _rows(out)
    assert rows[flat]["status"] == "degenerate" and rows[flat]["rank"] == ""  # named, not ranked
    assert "validation loss never went below 1.000" in rows[flat]["status_reason"]
    # A model that learned on validation but predicts nothing on the test set is ranked, last: excluding it
    # for its test results would pick the ranked models by the test set.
    assert rows[silent]["status"] == "ok" and rows[silent]["rank"] == "3"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["degenerate"] == 1 and {e["id"] for e in summary["excluded"]} == {flat}
    assert summary["dice"]["by_experiment"]["lesion_a"]["n"] == 3  # findings exclude it


def test_repeats_give_the_seed_spread(tmp_path):
    model = "lesion_b-unet-vgg11-imagenet"
    params = _params({"models": [model], "seeds": [1, 2]})
    models, evaluation = _records(tmp_path, params)
    for seed, dice in ((1, 0.64), (2, 0.70)):
        key = ("lesion_b", "unet", "vgg11", "imagenet")
        _write_run(models, evaluation, f"{model}~seed{seed}", key, dice, seed=seed)
    out = _aggregate(tmp_path, params, models, evaluation)
    row = _rows(out)[model]
    assert row["seeds"] == "3" and float(row["seed_dice_sd"]) == pytest.approx(
        0.03, abs=1e-4
    )  # 0.67 (main run), 0.64, 0.70
    seeds = (out / model / "seeds.csv").read_text().splitlines()
    assert seeds[0].startswith("run,base_seed,seed,status,dice") and len(seeds) == 4
    low, high = findings.sd_interval(0.03, 3, 0.95)  # 2 degrees of freedom: the chi-square interval is wide
    assert (float(row["seed_dice_sd_ci_low"]), float(row["seed_dice_sd_ci_high"])) == pytest.approx(
        (low, high), abs=1e-4
    )
    variance = json.loads((out / "summary.json").read_text())["seed_variance"]["lesion_b"]
    assert variance["models"] == 1 and variance["sd_min"] == variance["sd_max"] == pytest.approx(0.03, abs=1e-4)
    # The recipe, over its three seeds, is in recipes.csv; the models trained once are not.
    recipes = list(csv.DictReader((out / "recipes.csv").read_text().splitlines()))
    assert [(r["encoder"], r["seeds"], r["failed_seeds"]) for r in recipes] == [("vgg11", "3", "0")]
    assert float(recipes[0]["dice"]) == pytest.approx(0.67, abs=1e-3) and recipes[0]["rank_low"] == "1"


def test_hd95_is_published_with_its_median_and_the_volumes_a_model_missed(tmp_path):
    params = _params()
    silent = "lesion_a-unet-vgg11-random"
    models, evaluation = _records(tmp_path, params, **{silent: {"predicts": False, "dice": 0.0}})
    rows = _rows(_aggregate(tmp_path, params, models, evaluation))
    assert (rows[silent]["missed_volumes"], rows["lesion_a-unet-resnet18-random"]["missed_volumes"]) == ("9", "0")
    volumes = pd.read_csv(evaluation / silent / "volumes.csv")
    assert float(rows[silent]["hd95_median"]) == pytest.approx(volumes["hd95"].median(), abs=0.005)
    # Its distribution-free interval: the 2nd and 8th of the 9 sorted values (96.1%); no t interval of the mean.
    ordered = sorted(volumes["hd95"])
    assert (float(rows[silent]["hd95_median_ci_low"]), float(rows[silent]["hd95_median_ci_high"])) == pytest.approx(
        (ordered[1], ordered[7]), abs=0.005
    )
    assert "hd95_ci_low" not in rows[silent]


def _vgg11_downloaded(cell) -> str:
    return "download" if cell.encoder == "vgg11" else "phantom"


def test_results_of_different_data_sources_never_mix(tmp_path):
    params = _params()
    models, evaluation = _records(
        tmp_path, params, source=lambda cell: "download" if cell.encoder == "vgg11" else "phantom"
    )
    with pytest.raises(PipelineError, match="different data sources"):
        _aggregate(tmp_path, params, models, evaluation)


def test_a_train_record_without_a_key_is_one_error_naming_it(tmp_path):
    params = _params()
    models, evaluation = _records(tmp_path, params)
    path = models / "lesion_a-unet-vgg11-random" / "train.json"
    drop_key(path, "params")
    with pytest.raises(DataError, match=r"train.json: lacks the key 'params'"):
        _aggregate(tmp_path, params, models, evaluation)


def test_a_column_declared_in_the_schema_reaches_the_csv_the_reference_and_the_site(tmp_path, monkeypatch):
    """Adding a column is one edit in pipeline.results.schema (plus the code that computes it): the CSV, the
    reference's table and the site's leaderboard download follow; a field a stage writes and the schema lacks
    stops the stage."""
    from pipeline.results import schema

    params = _params()
    models, evaluation = _records(tmp_path, params)
    extra = schema.Field("dummy_metric", "score", 4, "dummy", "a column added for this test")
    monkeypatch.setattr(schema, "LEADERBOARD", (*schema.LEADERBOARD, extra))
    out = _aggregate(tmp_path, params, models, evaluation)
    header = (out / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "dummy_metric" and header[:-1] == [field.name for field in schema.LEADERBOARD[:-1]]
    assert "| `dummy_metric` |  | a column added for this test |" in schema.markdown("leaderboard")
    from types import SimpleNamespace

    from pipeline.site.data import write_downloads

    board = pd.read_csv(out / "leaderboard.csv")
    site_results = SimpleNamespace(
        leaderboard=board,
        experiments=list(dict.fromkeys(board["experiment"])),
        rankings=pd.read_csv(out / "rankings.csv"),
        recipes=pd.DataFrame(),
        summary={},
    )
    downloads = tmp_path / "downloads"
    write_downloads(site_results, downloads)  # what the site publishes for download, from the board it reads
    assert "dummy_metric" in (downloads / "leaderboard.csv").read_text().splitlines()[0]
    assert all("dummy_metric" in row for row in json.loads((downloads / "leaderboard.json").read_text()))
    # A stage that computes a field the schema does not declare fails, rather than drop it in silence.
    monkeypatch.setattr(schema, "LEADERBOARD", schema.LEADERBOARD[:-2])  # "device" and the dummy undeclared
    with pytest.raises(ValueError, match=r"the fields \['device'\] are not declared"):
        _aggregate(tmp_path, params, models, evaluation, name="undeclared")
