"""Seconds from "run" to mask in "Try it on your scan", in headless Debian chromium on this machine.

    python -m benchmarks.browser_inference                 # the demo's site (make demo), then a paper-size case
    python -m benchmarks.browser_inference --paper-slices 10   # a shorter paper-size volume

Two measurements, each from choosing the file to ``data-state=done`` (reading the scan, loading onnxruntime, the
graph and the weights, every slice, writing the mask), through the built site over loopback HTTP:

1. the demo: a test volume of the build (``browser/test-volume.nii.gz``) with its leading lung model;
2. paper size: a 512 x 512 x ``--paper-slices`` synthetic CT with a U-Net/ResNet-18 at the paper's working size
   of 512 px (random weights: the arithmetic, not the answer, is timed), its graph exported by the browser
   stage's own code and run through the same page, its weights served beside the pages.

WebAssembly, one thread (a static host sends no cross-origin-isolation headers, so no threads): what most readers'
browsers do without a GPU. Prints both, and the slices per second.
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from benchmarks.browser import launch, serve
from pipeline.site.try_page import lung_leader


def run_panel(browser, base: str, page_path: str, scan: Path, overrides: dict | None = None,
              timeout_s: float = 3600) -> float:  # fmt: skip
    """Seconds from giving the panel ``scan`` to its mask (``overrides``: panel data attributes to replace)."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{base}/{page_path}")
        page.click("#try-model > summary")
        page.wait_for_function("() => window.siteTry !== undefined")
        for key, value in (overrides or {}).items():
            page.eval_on_selector("#try-model", "(panel, kv) => { panel.dataset[kv[0]] = kv[1]; }", [key, value])
        started = time.perf_counter()
        page.set_input_files("#try-model input[type=file]", str(scan))
        page.wait_for_function("() => ['done', 'error'].includes(document.getElementById('try-model').dataset.state)",
                               timeout=timeout_s * 1000)  # fmt: skip
        seconds = time.perf_counter() - started
        if page.get_attribute("#try-model", "data-state") != "done":
            raise SystemExit(f"error: the panel failed: {page.inner_text('#try-model [role=alert]')}")
        return seconds
    finally:
        context.close()


def paper_case(site: Path, work: Path, slices: int, size: int = 512) -> tuple[Path, dict]:
    """A paper-size model (random weights, 512 px) with its browser graph and weights placed in ``site``, and a
    512 x 512 x ``slices`` CT; returns the scan and the panel attributes that point at the model."""
    import torch

    from pipeline.core.cells import Cell
    from pipeline.model import checkpoints
    from pipeline.model import factory as models
    from pipeline.model.browser import export_graph

    folder = work / "lung-unet-resnet18-paper"
    folder.mkdir()
    torch.manual_seed(0)
    state = models.build_model("unet", "resnet18", "random").state_dict()
    checkpoints.save(state, Cell("lung", "unet", "resnet18", "random"),
                     {"size": size, "hu_offset": 500.0, "hu_scale": 500.0, "orientation": "RAS"}, folder)  # fmt: skip
    (site / "try" / "graphs").mkdir(parents=True, exist_ok=True)
    (site / "try" / "weights").mkdir(parents=True, exist_ok=True)
    export_graph(folder, site / "try" / "graphs" / "paper.onnx")
    shutil.copyfile(folder / "model.safetensors", site / "try" / "weights" / "paper.safetensors")
    rng = np.random.default_rng(0)
    volume = np.full((size, size, slices), -1000, dtype=np.int16)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) / (0.42 * size)) ** 2 + ((xx - size / 2) / (0.47 * size)) ** 2 < 1
    volume[body] = 40
    for centre in (0.33, 0.67):
        lung = ((yy - size / 2) / (0.3 * size)) ** 2 + ((xx - centre * size) / (0.14 * size)) ** 2 < 1
        volume[lung] = -850
    volume = (volume + rng.normal(0, 20, volume.shape)).astype(np.int16)
    scan = work / "paper-size.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.diag([0.7, 0.7, 5.0, 1.0])), scan)
    overrides = {"model": folder.name, "graph": "try/graphs/paper.onnx", "weights": "try/weights/paper.safetensors",
                 "inputs": "slices", "orientation": "RAS"}  # fmt: skip
    return scan, overrides


def measure(browser, site_dir: Path, browser_dir: Path, results: Path, slices: int, size: int) -> dict:
    """Both measurements in ``browser`` (a launched chromium), on a copy of the built site."""
    index = json.loads((browser_dir / "index.json").read_text())
    board = pd.read_csv(results / "leaderboard.csv")
    model = lung_leader(board, index)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        site = work / "site"
        shutil.copytree(site_dir, site)
        scan, overrides = paper_case(site, work, slices, size)
        demo_scan = browser_dir / index["test_volume"]["file"]
        demo_shape = nib.load(demo_scan).shape
        with serve(site) as base:
            demo = run_panel(browser, base, f"models/{model}.html", demo_scan)
            paper = run_panel(browser, base, f"models/{model}.html", scan, overrides)
    return {
        "demo": {"model": model, "volume": index["test_volume"]["name"], "shape": list(demo_shape),
                 "seconds": round(demo, 2), "slices_per_s": round(demo_shape[2] / demo, 2)},
        "paper_size": {"model": f"unet-resnet18 at {size} px (random weights)", "shape": [size, size, slices],
                       "seconds": round(paper, 2), "slices_per_s": round(slices / paper, 3)},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("public"), help="a built site with browser graphs")
    parser.add_argument("--browser-dir", type=Path, default=Path("browser"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--paper-slices", type=int, default=100)
    parser.add_argument("--paper-size", type=int, default=512)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            result = measure(browser, args.site, args.browser_dir, args.results, args.paper_slices, args.paper_size)
        finally:
            browser.close()
    demo, paper = result["demo"], result["paper_size"]
    print(
        f"demo: {demo['model']} on the test volume {demo['volume']} {tuple(demo['shape'])}: {demo['seconds']:.1f} s "
        f"from run to mask ({demo['slices_per_s']} slices/s)"
    )
    print(
        f"paper size: {paper['model']} on {' x '.join(map(str, paper['shape']))}: {paper['seconds']:.1f} s from run "
        f"to mask ({paper['slices_per_s']} slices/s); WebAssembly, one thread, headless chromium on this machine"
    )
    return result


if __name__ == "__main__":
    main()
