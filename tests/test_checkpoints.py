"""Model folders in smp's own format: loaded by plain smp, never unpickled, converted only with weights_only."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from pipeline.core import profiles
from pipeline.model import checkpoints
from pipeline.model import factory as models
from pipeline.model.folder import CONFIG, PICKLE_SUFFIXES, PREPROCESSING, WEIGHTS, read_preprocessing
from pipeline.predict import load_model
from pipeline.site import model_card
from tests.conftest import ROOT, error_line, run_here, write_params

CELL = "lung-unet-resnet18-random"


class _Marker:
    """Unpickling this runs code: it creates the marker file (the attack a pickled checkpoint can carry)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (os.makedirs, (str(self.path),))


def _malicious(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": _Marker(marker), "cell": {}, "preprocess": {}}, path)
    return path


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return tiny_prepared


@pytest.fixture(scope="module")
def trained(tiny_project) -> Path:
    """A tiny model trained by the train stage's own code: its folder (read-only)."""
    return tiny_project / "models" / CELL


def test_plain_smp_loads_the_folder_and_computes_what_predict_computes(trained):
    import segmentation_models_pytorch as smp

    assert not [path for path in trained.iterdir() if path.suffix in PICKLE_SUFFIXES]
    plain = smp.from_pretrained(str(trained)).eval()  # no project code, no network
    segmenter = load_model(trained, device="cpu")
    image = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(plain(image), segmenter.model(image))
    assert segmenter.experiment == "lung" and segmenter.preprocess["size"] == 32


def test_a_pickled_model_is_refused_by_predict_and_evaluate_and_never_runs(tmp_path, tiny_raw, prepared, trained):
    marker = tmp_path / "pwned"
    scan = str(tiny_raw / "rp_im" / "1.nii.gz")
    # As a --model path ...
    evil = _malicious(tmp_path / "evil.pt", marker)
    line = error_line(run_here("pipeline.predict", "--model", str(evil), scan, str(tmp_path / "o.nii.gz")))
    assert "a pickled PyTorch checkpoint" in line and "python -m pipeline.model.convert" in line
    # ... and as the checkpoint of a model id, for predict and for evaluate.
    models_dir = tmp_path / "models"
    (models_dir / CELL).mkdir(parents=True)
    _malicious(models_dir / CELL / "model.pt", marker)
    record = json.loads((trained / "train.json").read_text())
    (models_dir / CELL / "train.json").write_text(json.dumps(record))
    line = error_line(run_here("pipeline.predict", "--model", CELL, scan, str(tmp_path / "o.nii.gz"), cwd=tmp_path))
    assert f"models/{CELL}/model.pt: a pickled PyTorch checkpoint" in line
    grid = {**profiles.compose("tiny", ROOT / "conf")["grid"], "experiments": ["lung"], "architectures": ["unet"]}
    write_params(tmp_path / "params.yaml", grid=grid, repeats={"models": [], "seeds": []})
    result = run_here("pipeline.evaluation.evaluate", "--params", str(tmp_path / "params.yaml"), "--prepared",
                      str(prepared), "--models", str(models_dir), "--out", str(tmp_path / "evaluation"))  # fmt: skip
    assert "model.pt: a pickled PyTorch checkpoint" in error_line(result)
    assert not marker.exists()


def test_convert_reads_a_trusted_old_checkpoint_with_weights_only_and_refuses_code(tmp_path, trained):
    model = models.build_model("unet", "resnet18", "random")
    old = tmp_path / "model.pt"
    cell = {"experiment": "lung", "architecture": "unet", "encoder": "resnet18", "weights": "random"}
    preprocessing = {"size": 32, "hu_offset": 500.0, "hu_scale": 500.0, "train_slices": 80}
    torch.save({"state_dict": model.state_dict(), "cell": cell, "preprocess": preprocessing, "epoch": 1}, old)
    result = run_here("pipeline.model.convert", str(old), str(tmp_path / "converted"))
    assert result.returncode == 0, result.stderr
    loaded, record = checkpoints.load(tmp_path / "converted")
    assert record["experiment"] == "lung"
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    marker = tmp_path / "pwned"
    line = error_line(run_here("pipeline.model.convert", str(_malicious(tmp_path / "evil.pt", marker)),
                                 str(tmp_path / "evil")))  # fmt: skip
    assert "is not a checkpoint that loads as plain tensors" in line and not marker.exists()
    assert not (tmp_path / "evil").exists()


def test_malformed_folders_are_one_line_naming_the_file(tmp_path, trained, tiny_raw):
    import shutil

    cases = {
        "no-weights": (lambda f: (f / WEIGHTS).unlink(), "not a model folder (no model.safetensors)"),
        "bare-tensor": (lambda f: torch.save(torch.zeros(3), f / WEIGHTS),
                        "model.safetensors: is not a readable safetensors file"),
        "other-model": (lambda f: (f / CONFIG).write_text(
            (f / CONFIG).read_text().replace('"resnet18"', '"resnet34"')), "does not match the model"),
        "bad-config": (lambda f: (f / CONFIG).write_text('{"_model_class": "os.system"}'),
                       "names the model class 'os.system'"),
        "bad-preprocessing": (lambda f: (f / PREPROCESSING).write_text('{"experiment": "brain"}'),
                              "names the experiment 'brain'"),
        "plain-state-dict": (lambda f: (f / CONFIG).unlink(), "config.json: is missing"),
    }  # fmt: skip
    for name, (damage, message) in cases.items():
        folder = tmp_path / name
        shutil.copytree(trained, folder)
        damage(folder)
        out = tmp_path / f"{name}.nii.gz"
        scan = tiny_raw / "rp_im" / "1.nii.gz"
        line = error_line(run_here("pipeline.predict", "--model", str(folder), str(scan), str(out)))
        assert message in line, (name, line)


def test_no_loader_of_the_project_unpickles():
    sources = "".join(path.read_text() for path in (ROOT / "pipeline").glob("*.py"))
    assert "weights_only=False" not in sources
    found = subprocess.run(["grep", "-rn", "weights_only=False", "pipeline"], cwd=ROOT, capture_output=True)
    assert found.returncode == 1 and not found.stdout


def test_the_model_card_of_a_demo_model_renders_its_results_and_parses_on_the_hub(tmp_path, trained):
    from huggingface_hub import ModelCard

    model_id = "lung-unet-resnet18-random"
    metrics = json.loads((ROOT / "results" / model_id / "metrics.json").read_text())
    preprocessing = read_preprocessing(trained)
    path = model_card.write(tmp_path, metrics, preprocessing, {"learning_rate": 0.001, "batch_size": 2}, "abc", 4, 1.0)
    card = ModelCard.load(path)
    assert card.data.library_name == "segmentation-models-pytorch" and card.data.pipeline_tag == "image-segmentation"
    results = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert results["dice"] == round(metrics["dice"], 4)
    assert results["normalized_surface_dice"] == round(metrics["nsd"], 4)
    text = path.read_text()
    assert "smp.from_pretrained" in text and "python -m pipeline.predict" in text and "Not a medical" in text
    assert metrics["checkpoint"]["sha256"] in text
    assert ("Synthetic data" in text) == (metrics["data_source"] == "phantom")


def test_the_checkpoint_record_matches_the_file(trained):
    import hashlib

    record = json.loads((trained / "train.json").read_text())["checkpoint"]
    content = (trained / WEIGHTS).read_bytes()
    expected = {"sha256": hashlib.sha256(content).hexdigest(), "md5": hashlib.md5(content).hexdigest()}
    assert record == {"file": "model.safetensors", "bytes": len(content), **expected}
