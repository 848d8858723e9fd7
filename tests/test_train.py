"""Training one cell: outputs, seeds from the id, resume after a kill, failures recorded as rows."""

import json

import pytest
import torch
import yaml

from pipeline import checkpoints, losses, profiles, train
from pipeline.cells import Run, parse_cell_id
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


def _train(params, prepared, tmp_path, name="run", cell=CELL, seed=None):
    run = Run(parse_cell_id(cell), seed)
    out = tmp_path / name / "models" / run.id
    record = train.run(run, params, prepared, out, tmp_path / "state")
    return record, out


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / checkpoints.WEIGHTS)


def test_a_cell_writes_a_model_folder_its_record_and_history(params, prepared, tmp_path):
    record, out = _train(params, prepared, tmp_path)
    assert sorted(path.name for path in out.iterdir()) == [
        "config.json", "history.csv", "model.safetensors", "preprocessing.json", "train.json"
    ]  # fmt: skip
    assert json.loads((out / "train.json").read_text()) == record
    assert record["status"] == "ok" and record["epochs"] == 2 and 1 <= record["best_epoch"] <= 2
    assert record["params"] == 14_321_937 and record["trained_params"] == record["params"]
    assert record["train_images_per_s"] > 0 and record["infer_images_per_s"] > 0
    assert record["device"].startswith("cpu") and record["profile"] == "tiny"
    assert record["checkpoint"] == checkpoints.file_digests(out / checkpoints.WEIGHTS)
    assert record["null_val_loss"] == pytest.approx(1.0)  # the paper's loss of predicting nothing
    assert record["software"]["torch"] == torch.__version__ and record["software"]["threads"] >= 1
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_seconds,val_seconds" and len(history) == 3
    model, preprocessing = checkpoints.load(out)
    assert preprocessing["experiment"] == "lesion_b" and preprocessing["size"] == 32
    assert type(model).__name__ == "Unet"
    assert not list((tmp_path / "state").iterdir())  # the resume state goes once the run is complete


def test_seed_comes_from_the_id_alone():
    assert train.cell_seed(0, CELL) == train.cell_seed(0, CELL)
    assert train.cell_seed(0, CELL) != train.cell_seed(0, "lung-unet-resnet18-random")
    assert train.cell_seed(0, CELL) != train.cell_seed(1, CELL)


@pytest.mark.parametrize("cell", [CELL, "lung-fpn-resnet18-random"])  # FPN trains with dropout
def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(cell, params, prepared, tmp_path, monkeypatch):
    reference, reference_out = _train(params, prepared, tmp_path, "reference", cell)

    calls = {"n": 0}
    real_evaluate = train.evaluate_loss

    def killed_in_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies during epoch 2, after epoch 1 was saved
        return real_evaluate(*args)

    monkeypatch.setattr(train, "evaluate_loss", killed_in_epoch_two)
    torch.manual_seed(12345)  # whatever the global generators hold when the killed process dies ...
    with pytest.raises(KeyboardInterrupt):
        _train(params, prepared, tmp_path, "interrupted", cell)
    assert [path.suffix for path in (tmp_path / "state").iterdir()] == [".safetensors"]  # no pickle
    assert not (tmp_path / "interrupted" / "models" / cell).exists()  # no half-written output

    monkeypatch.setattr(train, "evaluate_loss", real_evaluate)
    torch.manual_seed(999)  # ... and whatever a new process starts with: the saved state decides
    resumed, resumed_out = _train(params, prepared, tmp_path, "interrupted", cell)
    first = (reference_out / "history.csv").read_text().splitlines()
    second = (resumed_out / "history.csv").read_text().splitlines()
    assert [line.split(",")[:3] for line in first] == [line.split(",")[:3] for line in second]
    a, b = _weights(reference_out), _weights(resumed_out)
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert resumed["best_val_loss"] == reference["best_val_loss"]


def test_a_repeat_is_the_same_cell_with_another_seed(params, prepared, tmp_path):
    main, _ = _train(params, prepared, tmp_path)
    repeat, out = _train(params, prepared, tmp_path, seed=1)
    assert out.name == f"{CELL}~seed1" and repeat["id"] == out.name and repeat["model_id"] == CELL
    assert (repeat["base_seed"], main["base_seed"]) == (1, 0) and repeat["seed"] != main["seed"]
    assert repeat["seed"] == train.cell_seed(1, CELL) and repeat["inputs"] != main["inputs"]


def test_changed_parameters_never_resume_an_old_run(params, tmp_path):
    other = parse_params({**profiles.compose("tiny", ROOT / "conf"), "train": {
        **profiles.compose("tiny", ROOT / "conf")["train"], "learning_rate": 0.01}})  # fmt: skip
    run = Run(parse_cell_id(CELL))
    first, second = (describe(choice, tmp_path, tmp_path) for choice in (params, other))
    assert train.inputs_key(run, first) != train.inputs_key(run, second)


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
