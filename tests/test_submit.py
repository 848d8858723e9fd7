"""Bring your own model: predictions, smp folders and ONNX models scored by the grid's path, placed, refused."""

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipeline.data import rawdata
from pipeline.predict import load_model, save_mask
from tests.conftest import error_line, run_here, run_stage_here, scratch_project

GRID_MODEL = "lung-unet-resnet18-random"
DVC = str(Path(sys.executable).parent / "dvc")


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, tiny_project, tiny_raw) -> Path:
    """A folder of masks made by a script of ours: the grid model's predictions, one per test volume."""
    folder = tmp_path_factory.mktemp("predictions") / "masks"
    folder.mkdir()
    segmenter = load_model(tiny_project / "models" / GRID_MODEL, device="cpu")
    for scan in rawdata.iter_test_scans(tiny_raw):
        like = nib.load(tiny_raw / rawdata.TEST_IMAGE_DIR / scan.name)
        save_mask(segmenter.segment(scan.image), like, folder / scan.name)
    return folder


@pytest.fixture
def project(tmp_path, tiny_project) -> Path:
    """The tiny project, with its own submissions/ (and results/, scores/) to change."""
    return scratch_project(tiny_project, tmp_path / "project", copied=("results",))


def _submit(project: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    return run_here("pipeline.submit", name, "--experiment", "lung", *args, cwd=project)


def _grid_metrics(tiny_project: Path) -> dict:
    return json.loads((tiny_project / "evaluation" / GRID_MODEL / "metrics.json").read_text())


SCORES = ("dice", "dice_ci_low", "dice_ci_high", "nsd", "hd95", "sensitivity", "specificity", "precision",
          "slice_dice", "pooled_dice", "paper_dice")  # fmt: skip


def _dry_run(project: Path, *args: str) -> str:
    """The dry run's report; it must write nothing (a --summary-json file named outside the project aside)."""
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*"))
    result = _submit(project, "trial", *args, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == before
    return result.stdout


def test_the_grid_models_own_predictions_score_exactly_as_the_model(project, predicted, tiny_project, tiny_prepared):
    from pipeline.core.config import load_params
    from pipeline.evaluation import external
    from pipeline.evaluation.heldout import HeldOutSet

    params = load_params(project / "params.yaml")
    test = HeldOutSet.load(tiny_prepared)
    from pipeline.data.predictions import match_volumes

    masks = external.read_predictions(match_volumes(predicted, list(test.volume_rows)), test)
    scored = external.score_masks(masks, "lung", test, params.evaluate)
    grid = _grid_metrics(tiny_project)
    for name in ("dice", "dice_ci_low", "dice_ci_high", "nsd", "hd95", "sensitivity", "specificity", "precision"):
        assert scored.record[name] == pytest.approx(grid[name], abs=1e-6), name
    out = _dry_run(project, "--predictions", str(predicted))
    assert f"Dice {grid['dice']:.4f}" in out and "dry run: nothing written" in out
    assert "ranked checkpoints of lung in results/ plus this one" in out and "against the leader" in out


def test_a_copy_of_a_grid_model_folder_gets_exactly_its_metrics(project, tiny_project, tmp_path):
    copy = Path(shutil.copytree(tiny_project / "models" / GRID_MODEL, tmp_path / "copy"))
    for name in ("train.json", "history.csv"):
        (copy / name).unlink()
    grid = _grid_metrics(tiny_project)
    out = _dry_run(project, "--model", str(copy))
    assert f"Dice {grid['dice']:.4f} [{grid['dice_ci_low']:.4f}, {grid['dice_ci_high']:.4f}]" in out
    assert "M parameters (parameters of the torch module)" in out and "images/s on cpu" in out
    # Without preprocessing.json the benchmark's own preprocessing is assumed, the same here.
    (copy / "preprocessing.json").unlink()
    again = _dry_run(project, "--model", str(copy))
    assert f"Dice {grid['dice']:.4f} [{grid['dice_ci_low']:.4f}, {grid['dice_ci_high']:.4f}]" in again


def _onnx_export(tiny_project: Path, path: Path, channels: int = 1, size: int | None = None) -> Path:
    import torch

    from pipeline.model import checkpoints

    model, _ = checkpoints.load(tiny_project / "models" / GRID_MODEL)
    if channels != 1:
        model = torch.nn.Sequential(torch.nn.Conv2d(channels, 1, 1), model)
    example = torch.zeros(1, channels, size or 32, size or 32)
    axes = {"image": {0: "n"}, "logits": {0: "n"}} if size else {"image": {0: "n", 2: "h", 3: "w"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices are not ours
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes=axes)  # fmt: skip
    return path


def test_an_onnx_export_of_a_grid_model_gets_its_metrics(project, tiny_project, tmp_path, tiny_prepared):
    from pipeline.core.config import load_params
    from pipeline.evaluation import external
    from pipeline.evaluation.heldout import HeldOutSet
    from pipeline.model.device import select_device

    path = _onnx_export(tiny_project, tmp_path / "model.onnx", size=32)
    params = load_params(project / "params.yaml")
    test = HeldOutSet.load(tiny_prepared)
    meta = json.loads((tiny_prepared / "meta.json").read_text())
    defaults = external.default_preprocessing("lung", meta["preprocess"])
    network = external.load_network(path, "onnx", "lung", defaults, select_device("cpu"))
    scored = external.score_network(network, "lung", test, params.evaluate, meta["preprocess"])
    grid = _grid_metrics(tiny_project)
    for name in SCORES:
        assert scored.record[name] == pytest.approx(grid[name], abs=1e-3), name
    assert network.about["params"] > 1e6
    out = _dry_run(project, "--model", str(path))
    assert "values in the ONNX graph's weights" in out


def _nnunet_layout(predicted: Path, folder: Path) -> Path:
    folder.mkdir()
    for mask in predicted.iterdir():
        shutil.copyfile(mask, folder / f"covid_{int(mask.name.split('.')[0]):03d}.nii.gz")
    for sidecar in ("dataset.json", "plans.json", "predict_from_raw_data_args.json"):
        (folder / sidecar).write_text("{}")
    (folder / "covid_001.npz").write_bytes(b"not opened")
    (folder / "covid_001.pkl").write_bytes(b"\x80never unpickled")
    return folder


def test_nnunet_layouts_and_case_maps_map_to_the_test_volumes(project, predicted, tmp_path, tiny_project):
    layout = _nnunet_layout(predicted, tmp_path / "nnunet")
    grid = _grid_metrics(tiny_project)
    summary = tmp_path / "summary.json"
    out = _dry_run(project, "--predictions", str(layout), "--summary-json", str(summary))
    assert f"Dice {grid['dice']:.4f}" in out
    written = json.loads(summary.read_text())
    assert set(written) == {"metric_per_case", "mean", "foreground_mean", "benchmark"}
    case = written["metric_per_case"][0]
    assert case["prediction_file"].endswith("covid_001.nii.gz") and case["reference_file"].endswith("1.nii.gz")
    metrics = case["metrics"]["1"]
    assert set(metrics) >= {"Dice", "IoU", "TP", "FP", "FN", "TN", "n_pred", "n_ref", "NSD", "HD95"}
    assert metrics["TP"] + metrics["FN"] == metrics["n_ref"] and metrics["TP"] + metrics["FP"] == metrics["n_pred"]
    assert 2 * metrics["TP"] / (metrics["n_pred"] + metrics["n_ref"]) == pytest.approx(metrics["Dice"])
    assert written["foreground_mean"]["Dice"] == pytest.approx(grid["dice"], abs=1e-6)
    # Any other naming, with a case map.
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    with open(tmp_path / "cases.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "volume"])
        for index, mask in enumerate(sorted(predicted.iterdir())):
            shutil.copyfile(mask, renamed / f"scan-{chr(97 + index)}.nii.gz")
            writer.writerow([f"scan-{chr(97 + index)}", mask.name])
    mapped = _dry_run(project, "--predictions", str(renamed), "--case-map", str(tmp_path / "cases.csv"))
    assert f"Dice {grid['dice']:.4f}" in mapped
    result = _submit(project, "trial", "--predictions", str(renamed), "--dry-run")
    assert "has no test volume number at the end of its name" in error_line(result)


def _state(project: Path) -> dict:
    """Every file under submissions/, results/ and public/ with its content hash."""
    out = {}
    for folder in ("submissions", "results", "public"):
        root = project / folder
        if root.exists():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    out[path.relative_to(project).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _copy_with(predicted: Path, folder: Path, volume: str, data=None, affine=None, header_shape=None) -> Path:
    shutil.copytree(predicted, folder)
    if volume:
        original = nib.load(predicted / volume)
        values = np.asanyarray(original.dataobj) if data is None else data(np.asanyarray(original.dataobj))
        image = nib.Nifti1Image(values, original.affine if affine is None else affine(original.affine))
        nib.save(image, folder / volume)
    return folder


REFUSALS = {
    "a missing volume": (lambda p, f: (shutil.copytree(p, f), (f / "4.nii.gz").unlink()),
                         "lacks a mask for the test volume 4.nii.gz"),
    "an extra volume": (lambda p, f: (shutil.copytree(p, f), shutil.copyfile(f / "1.nii.gz", f / "10.nii.gz")),
                        "10.nii.gz: is an extra volume"),
    "a wrong shape": (lambda p, f: _copy_with(p, f, "2.nii.gz", data=lambda a: a[:-1]), "2.nii.gz: has shape"),
    "a wrong affine": (lambda p, f: _copy_with(p, f, "3.nii.gz", affine=lambda a: np.diag([-1.0, 1, 1, 1]) @ a),
                       "3.nii.gz: has an affine that differs from its scan's"),
    "labels other than 0 and 1": (lambda p, f: _copy_with(p, f, "5.nii.gz", data=lambda a: a.astype(np.uint8) * 2),
                                  "5.nii.gz: has the values {2}; a mask holds only 0 and 1"),
    "NaN": (lambda p, f: _copy_with(p, f, "6.nii.gz", data=lambda a: np.where(a > 0, np.nan, 0.0).astype(np.float32)),
            "6.nii.gz: contains NaN"),
    "a 4-D file": (lambda p, f: _copy_with(p, f, "7.nii.gz", data=lambda a: np.stack([a, a], axis=-1)),
                   "7.nii.gz: has shape"),
    "an HTML page": (lambda p, f: (shutil.copytree(p, f), (f / "8.nii.gz").write_text("<!DOCTYPE html><html>quota")),
                     "8.nii.gz: is an HTML page"),
    "a stray file": (lambda p, f: (shutil.copytree(p, f), (f / "notes.txt").write_text("hi")),
                     "notes.txt: is not a NIfTI mask"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_predictions_are_refused_in_one_line_and_nothing_is_written(case, project, predicted, tmp_path):
    (project / ".dvc").mkdir()  # a checkout: the refusal must come from the check, not from where it runs
    make, expected = REFUSALS[case]
    make(predicted, tmp_path / "bad")
    before = _state(project)
    line = error_line(_submit(project, "bad-entry", "--predictions", str(tmp_path / "bad")))
    assert expected in line, line
    assert _state(project) == before and not (project / "submissions" / "bad-entry").exists()


def test_bad_models_and_names_are_refused(project, predicted, tiny_project, tmp_path):
    (project / ".dvc").mkdir()
    before = _state(project)
    folder = tiny_project / "models" / GRID_MODEL

    def refused(name: str, *args: str) -> str:
        line = error_line(_submit(project, name, *args))
        assert _state(project) == before
        return line

    assert "is a model of the grid" in refused(GRID_MODEL, "--predictions", str(predicted))
    assert "is not a submission name" in refused("My_Model", "--predictions", str(predicted))
    assert "expected an http(s) address" in refused("ok-name", "--predictions", str(predicted), "--url",
                                                  "javascript:alert(1)")  # fmt: skip
    assert "--params-m: a model's parameters are counted" in refused("ok-name", "--model", str(folder),
                                                                     "--params-m", "3")  # fmt: skip
    no_weights = Path(shutil.copytree(folder, tmp_path / "no-weights"))
    (no_weights / "model.safetensors").unlink()
    assert "lacks model.safetensors" in refused("ok-name", "--model", str(no_weights))
    mismatched = Path(shutil.copytree(folder, tmp_path / "mismatched"))
    config = json.loads((mismatched / "config.json").read_text())
    (mismatched / "config.json").write_text(json.dumps({**config, "encoder_name": "resnet34"}))
    assert "does not match the model of config.json" in refused("ok-name", "--model", str(mismatched))
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(b"\x80\x04never opened")
    assert "a pickled PyTorch checkpoint" in refused("ok-name", "--model", str(pickled))
    three_channels = _onnx_export(tiny_project, tmp_path / "rgb.onnx", channels=3, size=32)
    assert "expected (N, 1, H, W)" in refused("ok-name", "--model", str(three_channels))
    assert "is not a loadable ONNX model" in refused("ok-name", "--model", str(_html(tmp_path / "page.onnx")))


def _html(path: Path) -> Path:
    path.write_text("<html>not a model</html>")
    return path


def test_an_onnx_graph_whose_output_is_not_one_logit_per_pixel_is_refused(project, tmp_path):
    import torch

    class Halves(torch.nn.Module):
        def forward(self, image):
            return torch.nn.functional.avg_pool2d(image, 2)

    path = tmp_path / "halves.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Halves(), (torch.zeros(1, 1, 32, 32),), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "n"}})  # fmt: skip
    line = error_line(_submit(project, "halves", "--model", str(path), "--dry-run"))
    assert "gave output of shape (1, 1, 16, 16) for input (1, 1, 32, 32)" in line


def _own_pipeline(tiny_project: Path, size: int = 32):
    """A submitter's whole model in one torch module: the HU scaling, a plain bilinear resize to its working
    size (not the benchmark's antialiased one), the grid model's network, sigmoid, and back to the slice's size."""
    import torch
    import torch.nn.functional as F

    from pipeline.model import checkpoints

    network, _ = checkpoints.load(tiny_project / "models" / GRID_MODEL)

    class OwnPipeline(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, hu):
            height, width = hu.shape[-2:]
            x = F.interpolate((hu + 500.0) / 500.0, size=(size, size), mode="bilinear", align_corners=False)
            probs = torch.sigmoid(self.network(x))
            return F.interpolate(probs, size=(height, width), mode="bilinear", align_corners=False)

    return OwnPipeline().eval()  # a new module trains by default, and the exporter restores the mode it found


@pytest.mark.slow
def test_a_native_onnx_graph_is_scored_on_its_own_preprocessing(project, tiny_project, tmp_path, tiny_prepared):
    """The native contract: HU slices at the scan's size in, probabilities at that size out; the benchmark only
    thresholds. Its score is exactly that of the masks the submitter's own pipeline makes."""
    import torch

    from pipeline.core.config import load_params
    from pipeline.data.prepared import load_native
    from pipeline.evaluation import external
    from pipeline.evaluation.heldout import HeldOutSet

    model = _own_pipeline(tiny_project)
    path = tmp_path / "native.onnx"
    axes = {"hu": {0: "n", 2: "h", 3: "w"}, "probabilities": {0: "n", 2: "h", 3: "w"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 40, 48),), str(path), dynamo=False, input_names=["hu"],
                          output_names=["probabilities"], dynamic_axes=axes)  # fmt: skip
    params = load_params(project / "params.yaml")
    test = HeldOutSet.load(tiny_prepared)
    masks = {}
    with torch.no_grad():
        for name in test.volume_rows:
            hu = torch.from_numpy(np.asarray(load_native(test.volume_dirs[name], tiny_prepared).image, np.float32))
            masks[name] = (model(hu[:, None])[:, 0] >= params.evaluate.threshold).numpy()
    own = external.score_masks(masks, "lung", test, params.evaluate).record
    out = _dry_run(project, "--model", str(path), "--onnx-contract", "native")
    assert f"Dice {own['dice']:.4f} [{own['dice_ci_low']:.4f}, {own['dice_ci_high']:.4f}]" in out
    benchmark = _onnx_export(tiny_project, tmp_path / "benchmark.onnx")  # the same network under today's contract
    assert f"Dice {own['dice']:.4f} [" not in _dry_run(project, "--model", str(benchmark))
    # What the contract refuses, each in one line: logits for probabilities, a fixed size, the wrong kind of model.
    logits = _onnx_export(tiny_project, tmp_path / "logits.onnx")
    line = error_line(_submit(project, "x", "--model", str(logits), "--onnx-contract", "native", "--dry-run"))
    assert "under the native contract it gives probabilities in [0, 1]" in line
    fixed = _onnx_export(tiny_project, tmp_path / "fixed.onnx", size=32)
    line = error_line(_submit(project, "x", "--model", str(fixed), "--onnx-contract", "native", "--dry-run"))
    assert "fixes its slices at 32 x 32" in line
    copy = Path(shutil.copytree(tiny_project / "models" / GRID_MODEL, tmp_path / "copy"))
    line = error_line(_submit(project, "x", "--model", str(copy), "--onnx-contract", "native", "--dry-run"))
    assert "--onnx-contract native: only for an .onnx --model" in line


def _init_dvc(project: Path) -> None:
    result = subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # 16 s: submit, score twice and aggregate in-process; make test runs it, make check skips it
def test_a_submission_is_written_scored_once_and_ranked_among_the_grid(project, predicted, tmp_path):
    _init_dvc(project)
    title = "Our <script>alert(1)</script> model *bold*"
    result = _submit(project, "our-masks", "--predictions", str(predicted), "--title", title, "--authors", "A. B.")
    assert result.returncode == 0, result.stderr
    folder = project / "submissions" / "our-masks"
    record = json.loads((folder / "submission.json").read_text())
    assert record["kind"] == "predictions" and record["title"] == title and len(record["files"]) == 9
    assert (folder / "predictions.dvc").exists() and sorted(p.name for p in (folder / "predictions").iterdir())
    assert "dvc repro" in result.stdout

    assert "score: 1 scored, 0 reused" in run_stage_here(project, "pipeline.evaluation.score")
    assert "score: 0 scored, 1 reused" in run_stage_here(project, "pipeline.evaluation.score")
    # A second submission (the same model as an smp folder) is scored alone.
    copy = Path(shutil.copytree(project / "models" / GRID_MODEL, tmp_path / "copy"))
    assert _submit(project, "our-folder", "--model", str(copy)).returncode == 0
    assert "score: 1 scored, 1 reused" in run_stage_here(project, "pipeline.evaluation.score")
    # An altered file is refused, never scored.
    stored = folder / "predictions" / "1.nii.gz"
    stored.chmod(0o644)
    content = bytearray(stored.read_bytes())
    content[len(content) // 2] ^= 0xFF
    stored.write_bytes(bytes(content))
    assert "is not the file that was submitted" in error_line(run_here("pipeline.evaluation.score", cwd=project))
    assert _submit(project, "our-masks", "--predictions", str(predicted), "--replace").returncode == 0
    assert "score: 0 scored, 2 reused" in run_stage_here(project, "pipeline.evaluation.score")  # the same files
    changed = _copy_with(predicted, tmp_path / "changed", "1.nii.gz", data=np.zeros_like)
    assert _submit(project, "our-masks", "--predictions", str(changed), "--replace").returncode == 0
    assert "score: 1 scored, 1 reused" in run_stage_here(project, "pipeline.evaluation.score")
    again = _submit(project, "our-masks", "--predictions", str(predicted), "--replace", "--title", title)
    assert again.returncode == 0
    assert "score: 1 scored, 1 reused" in run_stage_here(project, "pipeline.evaluation.score")

    run_stage_here(project, "pipeline.results.aggregate")
    with open(project / "results" / "leaderboard.csv") as handle:
        rows = {row["id"]: row for row in csv.DictReader(handle)}
    grid, ours = rows[GRID_MODEL], rows["our-masks"]
    assert grid["source"] == "grid" and ours["source"] == "external" and rows["our-folder"]["source"] == "external"
    assert ours["dice"] == grid["dice"] == rows["our-folder"]["dice"] and ours["rank"] and ours["tier"]
    assert rows["our-folder"]["params_m"] == grid["params_m"] and not ours["params_m"]
    metrics = json.loads((project / "results" / "our-masks" / "metrics.json").read_text())
    from pipeline.results.report import report

    text = report("our-masks", project / "results")  # what the pull request that adds it would get
    assert f"| rank | {metrics['rank']} of {metrics['ranked_among']} (the grid's ranked checkpoints" in text
    assert text.count("| " + GRID_MODEL.split("-")[0]) >= 1 and "beyond 0.01" in text
    comparison = metrics["comparisons"][0]
    # The same masks as a grid model: no relevant difference from anyone, a difference of 0 at most.
    assert comparison["role"] == "leader" and comparison["verdict"] in ("worse", "no relevant difference shown")
    assert (
        metrics["ranked_among"]
        == sum(
            1
            for row in rows.values()
            if row["source"] == "grid" and row["experiment"] == "lung" and row["status"] == "ok"
        )
        + 1
    )
    assert metrics["metadata"]["title"] == title
    summary = json.loads((project / "results" / "summary.json").read_text())
    assert summary["submissions"]["ranked"] == 2 and summary["leaders"]["lung"]["id"] != "our-masks"

    # An edited scores/index.json must not drop a scored submission from the board in silence.
    index_path = project / "scores" / "index.json"
    index = json.loads(index_path.read_text())
    edited = {"scored": [n for n in index["scored"] if n != "our-masks"], "other_test_set": ["our-masks"]}
    index_path.write_text(json.dumps(edited))
    assert "lists our-masks as made for other test scans" in error_line(run_here("pipeline.results.aggregate",
                                                                                 cwd=project))  # fmt: skip
    index_path.write_text(json.dumps(index))

    # Removing a submission is deleting its folder; the grid's ranks, rank sets and tiers never move with them.
    shutil.rmtree(project / "submissions" / "our-folder")
    run_stage_here(project, "pipeline.evaluation.score")
    run_stage_here(project, "pipeline.results.aggregate")
    assert "our-folder" not in (project / "results" / "leaderboard.csv").read_text()
    with open(project / "results" / "leaderboard.csv") as handle:
        after = {row["id"]: row for row in csv.DictReader(handle)}
    for model, row in rows.items():
        if row["source"] == "grid":
            assert [after[model][key] for key in ("rank", "rank_low", "rank_high", "tier")] == [
                row[key] for key in ("rank", "rank_low", "rank_high", "tier")
            ]


def test_the_name_is_checked_again_under_the_lock(tmp_path):
    """Two runs of one name at once: the second to take the lock finds the first one's submission and stops,
    where both used to pass the check made before the lock and one silently replaced the other."""
    from types import SimpleNamespace

    from pipeline import submit
    from pipeline.core.errors import PipelineError

    target = tmp_path / "submissions" / "same-name"
    target.mkdir(parents=True)
    (target / "submission.json").write_text("the first run's")
    args = SimpleNamespace(submissions=tmp_path / "submissions", name="same-name", experiment="lung", replace=False,
                           params_m=None)  # fmt: skip
    test = SimpleNamespace(native_fingerprint=lambda: "0" * 64)
    with pytest.raises(PipelineError, match="a submission of that name exists"):
        submit.write_submission(args, {}, None, {}, "predictions", None, test, {"data_source": "x", "profile": "y"})
    assert (target / "submission.json").read_text() == "the first run's"
