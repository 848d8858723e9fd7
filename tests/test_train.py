"""Training one cell: outputs, seeds from the id, resume after a kill, failures recorded as rows."""

import json

import pytest
import torch
import yaml

from pipeline import losses, profiles, train
from pipeline.cells import parse_cell_id
from pipeline.config import parse_params
from pipeline.preprocess import preprocess
from pipeline.train_inputs import TRAINING_CODE, describe
from tests.conftest import ROOT

CELL = "lesion_b-unet-resnet18-random"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_raw, tiny_params):
    out = tmp_path_factory.mktemp("prepared")
    preprocess(tiny_raw, out, tiny_params.preprocess, tiny_params.profile)
    return out


@pytest.fixture
def params():
    raw = profiles.compose("tiny", ROOT / "conf")
    raw["train"]["epochs"] = 2
    raw["train"]["device"] = "cpu"
    return parse_params(raw)


def _train(params, prepared, tmp_path, name="run"):
    out = tmp_path / name / "models" / CELL
    record = train.run(parse_cell_id(CELL), params, prepared, out, tmp_path / "state")
    return record, out


def test_a_cell_writes_checkpoint_record_and_history(params, prepared, tmp_path):
    record, out = _train(params, prepared, tmp_path)
    assert sorted(path.name for path in out.iterdir()) == ["history.csv", "model.pt", "train.json"]
    assert json.loads((out / "train.json").read_text()) == record
    assert record["status"] == "ok" and record["epochs"] == 2 and 1 <= record["best_epoch"] <= 2
    assert record["params"] == 14_321_937 and record["trained_params"] == record["params"]
    assert record["train_images_per_s"] > 0 and record["infer_images_per_s"] > 0
    assert record["device"].startswith("cpu") and record["profile"] == "tiny"
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_seconds,val_seconds" and len(history) == 3
    checkpoint = torch.load(out / "model.pt", weights_only=False)
    assert checkpoint["epoch"] == record["best_epoch"] and checkpoint["cell"]["encoder"] == "resnet18"
    assert not list((tmp_path / "state").glob("*.pt"))  # the resume state goes once the run is complete


def test_seed_comes_from_the_id_alone():
    assert train.cell_seed(0, CELL) == train.cell_seed(0, CELL)
    assert train.cell_seed(0, CELL) != train.cell_seed(0, "lung-unet-resnet18-random")
    assert train.cell_seed(0, CELL) != train.cell_seed(1, CELL)


def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(params, prepared, tmp_path, monkeypatch):
    reference, reference_out = _train(params, prepared, tmp_path, "reference")

    calls = {"n": 0}
    real_evaluate = train.evaluate_loss

    def killed_in_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies during epoch 2, after epoch 1 was saved
        return real_evaluate(*args)

    monkeypatch.setattr(train, "evaluate_loss", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _train(params, prepared, tmp_path, "interrupted")
    assert len(list((tmp_path / "state").glob("*.pt"))) == 1
    assert not (tmp_path / "interrupted" / "models" / CELL).exists()  # no half-written output

    monkeypatch.setattr(train, "evaluate_loss", real_evaluate)
    resumed, resumed_out = _train(params, prepared, tmp_path, "interrupted")
    first = (reference_out / "history.csv").read_text().splitlines()
    second = (resumed_out / "history.csv").read_text().splitlines()
    assert [line.split(",")[:3] for line in first] == [line.split(",")[:3] for line in second]
    a = torch.load(reference_out / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(resumed_out / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert resumed["best_val_loss"] == reference["best_val_loss"]


def test_changed_parameters_never_resume_an_old_run(params, tmp_path):
    other = parse_params({**profiles.compose("tiny", ROOT / "conf"), "train": {
        **profiles.compose("tiny", ROOT / "conf")["train"], "learning_rate": 0.01}})  # fmt: skip
    cell = parse_cell_id(CELL)
    first, second = (describe(choice, tmp_path, tmp_path) for choice in (params, other))
    assert train.inputs_key(cell, first) != train.inputs_key(cell, second)


def test_non_finite_loss_is_a_recorded_failure_not_a_crash(params, prepared, tmp_path, monkeypatch):
    def exploding(logits, target):
        return losses.dice_paper(logits, target) * float("nan")

    monkeypatch.setitem(losses.LOSSES, "dice_paper", exploding)
    record, out = _train(params, prepared, tmp_path)
    assert record["status"] == "failed"
    assert record["error"].startswith("TrainingFailed: non-finite loss at epoch 1")
    assert sorted(path.name for path in out.iterdir()) == ["train.json"]


def test_the_train_inputs_stage_tracks_exactly_the_training_code():
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train_inputs"]
    code = {f"pipeline/{name}" for name in (*TRAINING_CODE, "train_inputs.py")}
    assert set(stage["deps"]) == code | {"data/prepared", "weights/imagenet"}
