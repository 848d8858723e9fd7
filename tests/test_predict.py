"""predict: a scan of any size in, the model's mask out with the scan's geometry; the same numbers as evaluate."""

import nibabel as nib
import numpy as np
import pytest
import torch

from pipeline.core.cells import Cell
from pipeline.core.config import EvaluateParams
from pipeline.data import rawdata
from pipeline.evaluation import metrics
from pipeline.evaluation.evaluate import evaluate_model
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model import checkpoints
from pipeline.model import factory as models
from pipeline.predict import load_model
from tests.conftest import error_line, run_here


@pytest.fixture(scope="module")
def prepared(tiny_prepared):
    return tiny_prepared


def _checkpoint(directory, experiment, size=32):
    """An untrained (random) model saved as the train stage saves one: enough to test the data path."""
    torch.manual_seed(0)
    model = models.build_model("unet", "resnet18", "random")
    preprocess_params = {"size": size, "hu_offset": 500.0, "hu_scale": 500.0, "train_slices": 80}
    folder = directory / f"{experiment}-model"
    folder.mkdir()
    checkpoints.save(model.state_dict(), Cell(experiment, "unet", "resnet18", "random"), preprocess_params, folder)
    return folder


def test_predict_matches_the_evaluation_of_the_same_model(tmp_path, prepared, tiny_raw):
    """results/<id>/volumes.csv is what predict produces: per-volume Dice recomputed from predict's output."""
    checkpoint = _checkpoint(tmp_path, "lesion_b")
    segmenter = load_model(checkpoint, device="cpu")
    cell = Cell("lesion_b", "unet", "resnet18", "random")
    params = EvaluateParams(threshold=0.5, bootstrap_samples=10, confidence=0.95, seed=0, nsd_tolerance_mm_lung=1.0,
                            nsd_tolerance_mm_lesion=3.0, workers=1)  # fmt: skip
    _, rows = evaluate_model(segmenter.model, cell.experiment, HeldOutSet.load(prepared), params)
    for row, scan in zip(rows, rawdata.iter_test_scans(tiny_raw), strict=True):
        mask = segmenter.segment(scan.image, scan.lung)
        assert mask.shape == scan.image.shape and mask.dtype == np.uint8
        counts = metrics.confusion(np.moveaxis(mask, -1, 0), np.moveaxis(scan.lesion > 0, -1, 0))
        assert metrics.scores(counts.total())["dice"][0] == pytest.approx(row["dice"], abs=1e-9)


def test_cli_writes_a_binary_mask_with_the_input_geometry(tmp_path, tiny_raw):
    checkpoint = _checkpoint(tmp_path, "lung")
    scan = tiny_raw / rawdata.TEST_IMAGE_DIR / "2.nii.gz"
    # Any in-plane size: a crop of the test volume with its own affine.
    original = nib.load(scan)
    cropped = np.asanyarray(original.dataobj)[5:70, 3:77, :]
    affine = original.affine.copy()
    affine[:3, 3] = [11.0, -7.0, 3.0]
    source = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(cropped, affine, original.header), source)
    output = tmp_path / "lungs.nii.gz"
    result = run_here("pipeline.predict", "--model", str(checkpoint), "--device", "cpu", str(source), str(output))
    assert result.returncode == 0, result.stderr
    assert "predict:" in result.stdout
    mask = nib.load(output)
    assert mask.shape == cropped.shape and mask.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(mask.affine, affine)
    assert set(np.unique(np.asanyarray(mask.dataobj))) <= {0, 1}
    assert mask.header.get_zooms() == nib.load(source).header.get_zooms()


def test_a_lesion_b_model_takes_its_lung_mask_from_a_file_or_a_lung_model(tmp_path, tiny_raw):
    lesion_b, lung = _checkpoint(tmp_path, "lesion_b"), _checkpoint(tmp_path, "lung")
    scan = tiny_raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz"
    lung_mask = tiny_raw / rawdata.TEST_LUNG_DIR / "1.nii.gz"
    base = ("pipeline.predict", "--model", str(lesion_b), "--device", "cpu", str(scan))
    assert run_here(*base, str(tmp_path / "a.nii.gz"), "--lung-mask", str(lung_mask)).returncode == 0
    assert run_here(*base, str(tmp_path / "b.nii.gz"), "--lung-model", str(lung)).returncode == 0
    line = error_line(run_here(*base, str(tmp_path / "c.nii.gz")))
    assert "is a lesion_b model: it needs the scan's lung mask; pass --lung-mask" in line
    assert not (tmp_path / "c.nii.gz").exists()


def test_bad_inputs_give_one_line(tmp_path, tiny_raw):
    checkpoint = _checkpoint(tmp_path, "lung")
    html = tmp_path / "quota.nii.gz"
    html.write_text("<html>Google Drive quota exceeded</html>")
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.full((32, 32), -1000, dtype=np.int16), np.eye(4)), flat)
    scan = str(tiny_raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz")
    out = str(tmp_path / "out.nii.gz")
    cases = {
        (str(checkpoint), str(html)): "is an HTML page, not data",
        (str(checkpoint), str(flat)): "expected a 3-D volume",
        ("lung-unet-resnet18-random", scan): "not here; fetch it with `dvc pull train@lung-unet-resnet18-random`",
        (str(tmp_path / "missing"), scan): "no such model folder",
        ("not-a-model", scan): "--model: 'not-a-model' is not a model id",
    }
    for (model, source), message in cases.items():
        line = error_line(run_here("pipeline.predict", "--model", model, "--device", "cpu", source, out, cwd=tmp_path))
        assert message in line, line
    assert not (tmp_path / "out.nii.gz").exists()


@pytest.mark.slow  # a fresh interpreter (torch) or git and dvc processes: make test runs it
def test_the_model_pages_python_snippet_needs_no_project_and_gives_predicts_mask(tmp_path, tiny_raw):
    """The snippet a model page gives (smp, torch, numpy, nibabel only) run where `import pipeline` fails, on a
    scan in a folder of its own: the same mask as `pipeline.predict`, for a lung model and for a lesion model
    (which takes the lungs from a file). Both readers' folders in one interpreter: it imports torch once."""
    import shutil
    import subprocess
    import sys

    from pipeline.site.model_page import python_snippet

    readers = {}
    for experiment in ("lung", "lesion_b"):
        folder = _checkpoint(tmp_path, experiment)
        work = tmp_path / f"reader-{experiment}"
        work.mkdir()
        shutil.copytree(folder, work / "downloaded-model")
        shutil.copyfile(tiny_raw / rawdata.TEST_IMAGE_DIR / "2.nii.gz", work / "scan.nii.gz")
        if experiment == "lesion_b":
            shutil.copyfile(tiny_raw / rawdata.TEST_LUNG_DIR / "2.nii.gz", work / "lungs.nii.gz")
        (work / "snippet.py").write_text(python_snippet("downloaded-model", experiment))
        readers[experiment] = (folder, work)
    guard = ("import os, sys; sys.modules['pipeline'] = None\n"  # no project code
             "for work in sys.argv[1:]:\n    os.chdir(work); exec(open('snippet.py').read(), {})")  # fmt: skip
    works = [str(work) for _, work in readers.values()]
    result = subprocess.run([sys.executable, "-c", guard, *works], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for experiment, (folder, work) in readers.items():
        ours = np.asarray(nib.load(work / "mask.nii.gz").dataobj)
        scan = nib.load(work / "scan.nii.gz")
        lungs = nib.load(work / "lungs.nii.gz").get_fdata() if experiment == "lesion_b" else None
        expected = load_model(folder, device="cpu").segment(scan.get_fdata(), lung_mask=lungs)
        assert ours.shape == expected.shape and np.array_equal(nib.load(work / "mask.nii.gz").affine, scan.affine)
        assert (ours != expected).mean() < 1e-4  # the same steps: identical but for float ties at the threshold
