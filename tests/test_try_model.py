"""Any model of the build run on a reader's own scan, on the tiny grid run through DVC (its browser and site
stages' outputs): the browser graph gives predict's mask (onnxruntime in Python on the test volumes), and in
Debian's chromium the "Try it on your scan" panel does the same from a NIfTI file and from a DICOM series, over
loopback HTTP, with no request off the machine and nothing loaded before the panel is opened."""

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from pipeline.data import dicom, rawdata
from pipeline.predict import load_model
from tests.conftest import run_stage_here


@pytest.fixture(scope="module")
def project(dvc_tiny_project) -> Path:
    """The tiny grid run through DVC: its models, and the browser and site stages' outputs made from them."""
    return dvc_tiny_project


@pytest.fixture(scope="module")
def raw(project) -> Path:
    return project / "data" / "raw"


@pytest.fixture(scope="module")
def exported(project) -> Path:
    """The browser stage's output: the graphs, their index and the test volume."""
    return project / "browser"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2 * (a & b).sum() / total


def _graph_session(graph: Path, weights: Path, tmp: Path):
    """onnxruntime (Python) on a browser graph, its weights read from the model's own safetensors file."""
    import onnxruntime as ort

    folder = tmp / f"{weights.parent.name}-{graph.stem}"
    folder.mkdir()
    shutil.copyfile(graph, folder / "graph.onnx")
    os.link(weights, folder / "model.safetensors")  # onnxruntime refuses a link that leads out of the folder
    return ort.InferenceSession(str(folder / "graph.onnx"))


def _run_graph(session, volume: np.ndarray, lungs: np.ndarray | None) -> np.ndarray:
    def file_order(array):  # (H, W, S) as nibabel gives it -> (S, W, H): each slice as the file stores it
        return np.ascontiguousarray(np.moveaxis(array, -1, 0).transpose(0, 2, 1), dtype=np.float32)

    feeds = {"slices": file_order(volume)}
    if lungs is not None:
        feeds["lungs"] = file_order(lungs)
    (mask,) = session.run(None, feeds)
    return np.moveaxis(mask.transpose(0, 2, 1), 0, -1)


@pytest.mark.parametrize("height, width, size", [(160, 160, 64), (630, 630, 512), (512, 400, 64), (50, 70, 64),
                                                 (64, 64, 64), (97, 33, 32)])  # fmt: skip
def test_the_graphs_antialiased_resize_is_torchs(height, width, size):
    """Shrinking, growing, non-square, odd ratios and no change: the matrix form every browser backend runs gives
    what F.interpolate(antialias=True), which preprocessing and predict use, gives."""
    import torch
    import torch.nn.functional as F

    from pipeline.model.browser import antialiased_resize

    stack = torch.randn(2, 1, height, width, generator=torch.Generator().manual_seed(height)) * 500
    expected = F.interpolate(stack, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(antialiased_resize(stack, size), expected, rtol=0, atol=1e-3)


@pytest.mark.slow
def test_the_browser_graph_gives_predicts_mask_on_every_test_volume(exported, project, raw, tmp_path):
    """Dice >= 0.999 per test volume between onnxruntime on the browser graph (fed the model's own safetensors)
    and pipeline.predict, for every model of the build; one graph per kind of model, no weights in it."""
    import json

    index = json.loads((exported / "index.json").read_text())
    board = pd.read_csv(project / "results" / "leaderboard.csv")
    assert set(index["models"]) == set(board.loc[board["status"].isin(["ok", "degenerate"]), "id"])
    for graph, size in index["graphs"].items():
        weights = next(project / "models" / m / "model.safetensors" for m, e in index["models"].items()
                       if e["graph"] == graph)  # fmt: skip
        assert size < weights.stat().st_size / 10  # weights-free: they stay in model.safetensors
    lung_id = board[board["experiment"] == "lung"].sort_values("rank")["id"].iloc[0]
    lung_model = load_model(project / "models" / lung_id, device="cpu")
    volumes = {path.name: np.asarray(nib.load(path).dataobj, dtype=np.float32)
               for path in sorted((raw / rawdata.TEST_IMAGE_DIR).glob("*.nii.gz"))}  # fmt: skip
    lung_masks = {name: lung_model.segment(volume) for name, volume in volumes.items()}
    for model_id, entry in index["models"].items():
        folder = project / "models" / model_id
        segmenter = load_model(folder, device="cpu")
        session = _graph_session(exported / entry["graph"], folder / "model.safetensors", tmp_path)
        assert entry["orientation"] == "RAS"
        for name, volume in volumes.items():
            lungs = lung_masks[name] if "lungs" in entry["inputs"] else None
            expected = segmenter.segment(volume, lungs)
            got = _run_graph(session, volume, lungs)
            assert got.shape == expected.shape
            assert _dice(got, expected) >= 0.999, (model_id, name, _dice(got, expected))


# ------------------------------------------------------------------------------------------- in the browser


@pytest.mark.slow
def test_the_browser_stage_keeps_each_graph_until_its_kind_code_or_file_changes(exported, project, tmp_path):
    """A rerun exports nothing (retraining a model changes no graph); a graph file edited by hand is exported again,
    byte for byte as before (the exporter is deterministic)."""
    out = tmp_path / "browser"
    shutil.copytree(exported, out)
    index = json.loads((out / "index.json").read_text())
    graphs = sorted(index["graphs"])
    printed = run_stage_here(project, "pipeline.evaluation.browser_graphs", "--out", str(out))
    assert f"{len(graphs)} graphs ({len(graphs)} kept" in printed
    original = (exported / graphs[0]).read_bytes()
    (out / graphs[0]).write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    printed = run_stage_here(project, "pipeline.evaluation.browser_graphs", "--out", str(out))
    assert f"{len(graphs)} graphs ({len(graphs) - 1} kept" in printed
    assert (out / graphs[0]).read_bytes() == original
    assert json.loads((out / "index.json").read_text())["models"] == index["models"]


@pytest.fixture(scope="module")
def try_site(project) -> Path:
    """The site stage's output: the pages with the browser graphs and, as a build without a published remote,
    the models' weights."""
    return project / "public"


@pytest.fixture(scope="module")
def served(try_site):
    from benchmarks.browser import serve

    with serve(try_site) as base:
        yield base


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def chromium(playwright):
    from benchmarks.browser import launch

    browser = launch(playwright, webgl=True)
    yield browser
    browser.close()


@pytest.fixture
def tab(chromium):
    from tests.test_site_browser import Tab

    tab = Tab(chromium)
    yield tab
    tab.context.close()


def _leader(project: Path, experiment: str, by: str = "rank") -> str:
    """The experiment's first model on the leaderboard by ``by``: its leader, or with ``params_m`` its smallest."""
    board = pd.read_csv(project / "results" / "leaderboard.csv")
    return board[board["experiment"] == experiment].sort_values(by)["id"].iloc[0]


def _run_panel(tab, files, out: Path) -> Path:
    """Open the panel, give it the files (or press "Try with a test volume" for None), wait, download the mask."""
    page = tab.page
    page.click("#try-model > summary")
    page.wait_for_function("() => window.siteTry !== undefined")
    if files is None:
        page.click("#try-model .try-test")
    else:
        page.set_input_files("#try-model input[type=file]", files)
    page.wait_for_function("() => ['done', 'error'].includes(document.getElementById('try-model').dataset.state)",
                           timeout=240_000)  # fmt: skip
    state = page.get_attribute("#try-model", "data-state")
    assert state == "done", page.inner_text("#try-model [role=alert]")
    with page.expect_download() as download:
        page.click("a#try-download")
    download.value.save_as(out)
    return out


@pytest.mark.browser
def test_a_model_page_runs_the_model_on_a_nifti_scan_and_gives_predicts_mask(tab, served, project, raw,
                                                                             tmp_path):  # fmt: skip
    lung = _leader(project, "lung")
    tab.open(f"{served}/models/{lung}.html")
    assert not [url for url in tab.requested if "/vendor/ort/" in url or "safetensors" in url or "try.js" in url]
    scan = raw / rawdata.TEST_IMAGE_DIR / "2.nii.gz"
    mask_path = _run_panel(tab, [str(scan)], tmp_path / "mask.nii.gz")
    mask = nib.load(mask_path)
    expected = load_model(project / "models" / lung, device="cpu").segment(np.asarray(nib.load(scan).dataobj))
    assert np.array_equal(mask.affine, nib.load(scan).affine) and mask.shape == expected.shape
    assert _dice(np.asarray(mask.dataobj), expected) >= 0.999
    assert " ml segmented" in tab.page.inner_text("#try-model .try-volume")
    assert tab.page.get_attribute("#try-model", "data-backend") == "wasm"  # no WebGPU adapter: WebAssembly
    assert all("127.0.0.1" in url or url.startswith(("blob:", "data:")) for url in tab.requested)
    tab.check_clean()


@pytest.mark.browser
def test_on_webgpu_the_model_runs_on_the_gpu_and_gives_predicts_mask(playwright, served, project, raw,
                                                                      tmp_path):  # fmt: skip
    """Where the browser offers a WebGPU adapter (here SwiftShader's, in software), onnxruntime's WebGPU build
    runs the graph, and the mask is still predict's."""
    from benchmarks.browser import launch
    from tests.test_site_browser import Tab

    lung = _leader(project, "lung", by="params_m")  # the fewest kernels for the software GPU to compile
    scan = raw / rawdata.TEST_IMAGE_DIR / "3.nii.gz"
    browser = launch(playwright, webgpu=True)
    try:
        tab = Tab(browser)
        tab.open(f"{served}/models/{lung}.html")
        mask = nib.load(_run_panel(tab, [str(scan)], tmp_path / "mask.nii.gz"))
        assert tab.page.get_attribute("#try-model", "data-backend") == "webgpu"
        assert "WebGPU" in tab.page.inner_text("#try-model .try-status")
        assert any(url.endswith("/vendor/ort/ort.webgpu.min.js") for url in tab.requested)
        assert not any(url.endswith("/vendor/ort/ort.wasm.min.js") for url in tab.requested)
        tab.check_clean()
    finally:
        browser.close()
    expected = load_model(project / "models" / lung, device="cpu").segment(np.asarray(nib.load(scan).dataobj))
    assert np.array_equal(mask.affine, nib.load(scan).affine) and _dice(np.asarray(mask.dataobj), expected) >= 0.999


@pytest.mark.browser
def test_a_dicom_series_is_converted_in_the_page_and_gets_the_same_mask(tab, served, project, raw, tmp_path):
    lung = _leader(project, "lung")
    scan = nib.load(raw / rawdata.TEST_IMAGE_DIR / "2.nii.gz")
    whole = nib.Nifti1Image(np.round(np.asarray(scan.dataobj)).astype(np.float32), scan.affine)
    files = dicom.write_series(whole, tmp_path / "series")
    tab.open(f"{served}/models/{lung}.html")
    mask = nib.load(_run_panel(tab, [str(f) for f in files], tmp_path / "mask.nii.gz"))
    # dcm2niix stores the series rows flipped (RPS): the same voxels in world space as predict's mask
    expected = load_model(project / "models" / lung, device="cpu").segment(np.asarray(whole.dataobj))
    ours = nib.as_closest_canonical(mask)
    assert np.allclose(ours.affine, scan.affine, atol=1e-3)
    assert _dice(np.asarray(ours.dataobj), expected) >= 0.999
    tab.check_clean()


@pytest.mark.browser
def test_a_lesion_b_model_finds_the_lungs_first_on_the_test_volume(tab, served, project, exported, tmp_path):
    lesion = _leader(project, "lesion_b")
    tab.open(f"{served}/models/{lesion}.html")
    mask = nib.load(_run_panel(tab, None, tmp_path / "mask.nii.gz"))
    test_volume = nib.load(exported / "test-volume.nii.gz")
    volume = np.asarray(test_volume.dataobj, dtype=np.float32)
    lungs = load_model(project / "models" / _leader(project, "lung"), device="cpu").segment(volume)
    expected = load_model(project / "models" / lesion, device="cpu").segment(volume, lungs)
    assert np.array_equal(mask.affine, test_volume.affine)
    assert _dice(np.asarray(mask.dataobj), expected) >= 0.999
    tab.check_clean()


@pytest.mark.browser
def test_bad_input_is_one_message_and_the_panel_stays_usable(tab, served, try_site, project, raw, tmp_path):
    tab.open(f"{served}/try.html#model={_leader(project, 'lung')}")
    page = tab.page
    page.wait_for_function("() => window.siteTry !== undefined")
    jpeg = tmp_path / "photo.nii"
    jpeg.write_bytes(b"\xff\xd8\xff\xe0" + bytes(400))
    page.set_input_files("#try-model input[type=file]", str(jpeg))
    page.wait_for_function("() => document.getElementById('try-model').dataset.state === 'error'")
    assert "not a NIfTI file" in page.inner_text("#try-model [role=alert]")
    rgb = nib.Nifti1Image(np.zeros((8, 8, 4, 3), dtype=np.float32), np.eye(4))
    nib.save(rgb, tmp_path / "colour.nii.gz")
    page.set_input_files("#try-model input[type=file]", str(tmp_path / "colour.nii.gz"))
    page.wait_for_function("() => document.querySelector('#try-model [role=alert]').textContent.includes('4-D')")
    # a header claiming more voxels than a tab holds: refused before anything is read
    header = nib.Nifti1Header()
    header.set_data_shape((1000, 1000, 200))
    header.set_data_dtype(np.int16)
    (tmp_path / "huge.nii").write_bytes(header.binaryblock + bytes(4) + bytes(1024))
    page.set_input_files("#try-model input[type=file]", str(tmp_path / "huge.nii"))
    alert = "() => document.querySelector('#try-model [role=alert]').textContent"
    page.wait_for_function(f"{alert}.includes('100,000,000')")
    # a DICOM series with a slice missing: dcm2niix converts it unevenly spaced, and the page says so
    scan = nib.load(raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz")
    files = dicom.write_series(nib.Nifti1Image(np.round(np.asarray(scan.dataobj)).astype(np.float32), scan.affine),
                               tmp_path / "series")  # fmt: skip
    page.set_input_files("#try-model input[type=file]", [str(f) for f in files[:1] + files[2:]])
    page.wait_for_function("() => document.querySelector('#try-model [role=alert]').textContent.includes('missing')",
                           timeout=120_000)  # fmt: skip
    # two series mixed: dcm2niix converts each, and the page asks for one
    other = dicom.write_series(nib.Nifti1Image(np.round(np.asarray(scan.dataobj)).astype(np.float32) + 5,
                                               scan.affine), tmp_path / "other", first=100)  # fmt: skip
    page.set_input_files("#try-model input[type=file]", [str(f) for f in files + other])
    page.wait_for_function(f"{alert}.includes('2 series')", timeout=120_000)
    # weights that are not the model's: onnxruntime refuses them, in one sentence
    page.eval_on_selector("#try-model", "(panel) => { panel.dataset.weights = panel.dataset.graph; }")
    page.set_input_files("#try-model input[type=file]", str(raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz"))
    page.wait_for_function("() => document.querySelector('#try-model [role=alert]').textContent.includes('weights')",
                           timeout=120_000)  # fmt: skip
    assert page.get_attribute("#try-model", "data-state") == "error"
    page.evaluate("() => document.getElementById('try-picker').dispatchEvent(new Event('change'))")
    # still usable: a real scan then runs to the end
    page.set_input_files("#try-model input[type=file]", str(raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz"))
    page.wait_for_function("() => document.getElementById('try-model').dataset.state === 'done'", timeout=240_000)
    assert page.inner_text("#try-model [role=alert]").strip() == ""
    assert tab.outside == []


@pytest.mark.browser
def test_from_a_file_the_panel_says_how_to_serve_the_folder(tab, try_site, project):
    tab.open((try_site / "models" / f"{_leader(project, 'lung')}.html").as_uri())
    tab.page.click("#try-model > summary")
    tab.page.wait_for_selector("#try-model .try-file-protocol:not([hidden])")
    assert "python -m http.server" in tab.page.inner_text("#try-model .try-file-protocol")
    assert tab.page.is_disabled("#try-model input[type=file]")


@pytest.mark.browser
def test_the_browser_inference_benchmark_times_both_cases(chromium, try_site, exported, project):
    from benchmarks.browser_inference import measure

    result = measure(chromium, try_site, exported, project / "results", slices=2, size=64)
    volume = nib.load(exported / "test-volume.nii.gz").shape
    assert result["demo"]["shape"] == list(volume) and result["paper_size"]["shape"] == [64, 64, 2]
    assert result["demo"]["model"] == _leader(project, "lung")
    assert 0 < result["demo"]["seconds"] < 600 and 0 < result["paper_size"]["seconds"] < 600


@pytest.mark.browser
def test_cancel_stops_a_run_between_batches_and_the_next_run_completes(tab, served, project, raw, tmp_path):
    volume = np.full((512, 512, 120), -1000, dtype=np.int16)
    volume[100:400, 150:350] = 40  # a body to segment; many batches of 7 slices at 512 x 512
    nib.save(nib.Nifti1Image(volume, np.diag([0.7, 0.7, 5.0, 1.0])), tmp_path / "large.nii.gz")
    tab.open(f"{served}/models/{_leader(project, 'lung')}.html")
    page = tab.page
    page.click("#try-model > summary")
    page.wait_for_function("() => window.siteTry !== undefined")
    page.set_input_files("#try-model input[type=file]", str(tmp_path / "large.nii.gz"))
    page.wait_for_function("() => document.querySelector('#try-model .try-status').textContent.includes('slice')",
                           timeout=120_000)  # fmt: skip
    page.click("#try-model .try-cancel")
    page.wait_for_function("() => document.getElementById('try-model').dataset.state === 'idle'", timeout=60_000)
    assert page.inner_text("#try-model .try-status") == "Cancelled."
    assert page.is_hidden("#try-model .try-result") and page.is_hidden("#try-model .try-cancel")
    page.set_input_files("#try-model input[type=file]", str(raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz"))
    page.wait_for_function("() => document.getElementById('try-model').dataset.state === 'done'", timeout=240_000)
    tab.check_clean()
