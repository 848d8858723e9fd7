"""Training one cell: outputs, seeds from the id, resume after a kill, failures recorded as rows.

The runs of the tiny grid are trained once per test run (``tiny_project``); a test trains again only what it
must (an interrupted run, a failing one) and compares with those.
"""

import json

import pytest
import torch

from pipeline.core import profiles
from pipeline.core.cells import Run, parse_cell_id
from pipeline.core.config import load_params, parse_params
from pipeline.model import checkpoints
from pipeline.model.folder import WEIGHTS, file_digests
from pipeline.training import losses, train
from pipeline.training.inputs import describe, inputs_key
from tests.conftest import ROOT

CELL = "lesion_b-unet-resnet18-random"
DROPOUT_CELL = "lung-pspnet-resnet18-random"  # PSPNet trains with dropout: the global generator matters


@pytest.fixture(scope="module")
def params(tiny_project):
    return load_params(tiny_project / "params.yaml")


def _train(params, prepared, tmp_path, name="run", cell=CELL, seed=None):
    run = Run(parse_cell_id(cell), seed)
    out = tmp_path / name / "models" / run.id
    record = train.run(run, params, prepared, out, tmp_path / "state")
    return record, out


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / WEIGHTS)


def test_a_cell_writes_a_model_folder_its_record_and_history(tiny_project):
    out = tiny_project / "models" / CELL
    record = json.loads((out / "train.json").read_text())
    assert sorted(path.name for path in out.iterdir()) == [
        "config.json", "history.csv", "model.safetensors", "preprocessing.json", "train.json"
    ]  # fmt: skip
    assert record["status"] == "ok" and record["epochs"] == 2 and 1 <= record["best_epoch"] <= 2
    assert record["params"] == 14_321_937 and record["trained_params"] == record["params"]
    assert record["train_images_per_s"] > 0 and record["infer_images_per_s"] > 0
    assert record["device"].startswith("cpu") and record["profile"] == "tiny"
    assert record["checkpoint"] == file_digests(out / WEIGHTS)
    assert record["null_val_loss"] == pytest.approx(1.0)  # the paper's loss of predicting nothing
    assert record["software"]["torch"] == torch.__version__ and record["software"]["threads"] >= 1
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,val_loss,train_seconds,val_seconds" and len(history) == 3
    model, preprocessing = checkpoints.load(out)
    assert preprocessing["experiment"] == "lesion_b" and preprocessing["size"] == 32
    assert type(model).__name__ == "Unet"


def test_seed_comes_from_the_id_alone():
    assert train.cell_seed(0, CELL) == train.cell_seed(0, CELL)
    assert train.cell_seed(0, CELL) != train.cell_seed(0, "lung-unet-resnet18-random")
    assert train.cell_seed(0, CELL) != train.cell_seed(1, CELL)


def test_a_killed_run_resumes_and_ends_where_an_uninterrupted_one_does(params, tiny_project, tmp_path, monkeypatch):
    cell = DROPOUT_CELL  # with dropout, a resumed run must also restore the global generators
    prepared, reference_out = tiny_project / "data" / "prepared", tiny_project / "models" / cell
    reference = json.loads((reference_out / "train.json").read_text())
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
    assert not list((tmp_path / "state").iterdir())  # the resume state goes once the run is complete


@pytest.mark.slow
def test_a_truncated_resume_state_is_discarded_and_training_starts_again(params, tiny_project, tmp_path,
                                                                        monkeypatch, capsys):  # fmt: skip
    """A disk that filled up during the save, or a copy cut short, leaves a state file that cannot be read: it
    used to stop the run at every retry until deleted by hand; now it is dropped with a warning and the run
    starts from epoch 0, ending where an uninterrupted one does."""
    cell = DROPOUT_CELL
    prepared, reference_out = tiny_project / "data" / "prepared", tiny_project / "models" / cell
    real_evaluate, calls = train.evaluate_loss, {"n": 0}

    def killed_in_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args)

    monkeypatch.setattr(train, "evaluate_loss", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _train(params, prepared, tmp_path, "interrupted", cell)
    (state,) = (tmp_path / "state").iterdir()
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # cut short
    monkeypatch.setattr(train, "evaluate_loss", real_evaluate)
    resumed, resumed_out = _train(params, prepared, tmp_path, "interrupted", cell)
    warning = capsys.readouterr().err
    assert "cannot be read (cut short?); it is discarded and training starts again from epoch 0" in warning
    assert resumed["status"] == "ok"
    a, b = _weights(reference_out), _weights(resumed_out)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_repeat_is_the_same_cell_with_another_seed(tiny_project):
    cell = DROPOUT_CELL  # the tiny profile's repeated model
    main = json.loads((tiny_project / "models" / cell / "train.json").read_text())
    repeat = json.loads((tiny_project / "models" / f"{cell}~seed1" / "train.json").read_text())
    assert repeat["id"] == f"{cell}~seed1" and repeat["model_id"] == cell
    assert (repeat["base_seed"], main["base_seed"]) == (1, 0) and repeat["seed"] != main["seed"]
    assert repeat["seed"] == train.cell_seed(1, cell) and repeat["inputs"] != main["inputs"]


def test_changed_parameters_never_resume_an_old_run(params, tmp_path):
    raw = profiles.compose("tiny", ROOT / "conf")
    other = parse_params({**raw, "train": {**raw["train"], "learning_rate": 0.01}})
    run = Run(parse_cell_id(CELL))
    first, second = (describe(choice, tmp_path, tmp_path) for choice in (params, other))
    assert inputs_key(run, first) != inputs_key(run, second)


def test_non_finite_loss_is_a_recorded_failure_not_a_crash(params, tiny_prepared, tmp_path, monkeypatch):
    def exploding(logits, target):
        return losses.dice_paper(logits, target) * float("nan")

    monkeypatch.setitem(losses.LOSSES, "dice_paper", exploding)
    record, out = _train(params, tiny_prepared, tmp_path)
    assert record["status"] == "failed"
    assert record["error"].startswith("TrainingFailed: non-finite loss at epoch 1")
    assert sorted(path.name for path in out.iterdir()) == ["train.json"]


def test_the_resume_state_keeps_tied_weights_and_writes_each_tensor_as_it_is(tmp_path):
    """The state file is written from the tensors' own memory, one copy only where two share it (tied weights:
    safetensors refuses shared tensors), and reads back equal."""
    from pipeline.training.state import Progress, load_state, save_state

    def tied():
        model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 3))
        model[1].weight = model[0].weight  # two names, one tensor
        return model

    torch.manual_seed(0)
    model = tied()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(5)
    progress = Progress(history=[{"epoch": 1}], best_epoch=1, best_loss=0.5,
                        best_state={name: value.clone() for name, value in model.state_dict().items()})  # fmt: skip
    save_state(tmp_path / "state.safetensors", model, optimizer, generator, progress)
    assert model[1].weight is model[0].weight  # saving changed nothing in the model

    again = tied()
    resumed = load_state(tmp_path / "state.safetensors", again, torch.optim.Adam(again.parameters()),
                         torch.Generator(), torch.device("cpu"))  # fmt: skip
    for name, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value), name
    assert resumed.best_epoch == 1 and resumed.best_state.keys() == progress.best_state.keys()
