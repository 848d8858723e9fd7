""" "Try it on your scan": what the site gives the browser to run a model (site/assets/js/try.js).

From the browser stage's output (browser/index.json: each model's graph, inputs and training orientation; the
graphs; a test volume) and the build's remote: a panel on every model page with a graph, and try.html with a model
picker. The weights the browser reads are the published model.safetensors (the direct link into the DVC remote)
or, in a build without a published remote (the demo), the build's own, placed next to the pages when the site is
built (``place_weights``: hard links where the file system allows, so the demo's models take no second copy).
A lesion_b model needs the lungs: the panel names the build's leading lung model, which runs first.
"""

import os
import shutil
from pathlib import Path

from pipeline.core.errors import DataError
from pipeline.core.experiments import experiment
from pipeline.core.outputs import read_json, require_keys
from pipeline.core.paths import MODELS_DIR
from pipeline.model.folder import WEIGHTS
from pipeline.results.aggregate import leader_row

INDEX = "index.json"
REMEDY = "export the browser graphs again (`dvc repro browser`)"
SITE_FOLDER = "try"  # public/try/: graphs/, weights/, the test volume


def load_browser(folder: Path) -> dict | None:
    """browser/index.json, checked for what the pages use; None when the build has no browser graphs."""
    path = Path(folder) / INDEX
    if not path.exists():
        return None
    record = require_keys(read_json(path, REMEDY), ("models", "test_volume", "graphs"), path, REMEDY)
    for model_id, entry in record["models"].items():
        require_keys(entry, ("graph", "inputs", "experiment", "weights_bytes"), path, REMEDY)
        graph = entry["graph"]
        if not (isinstance(graph, str) and graph.startswith("graphs/") and Path(graph).name == graph[7:]
                and graph.endswith(".onnx") and (Path(folder) / graph).is_file()):  # fmt: skip
            raise DataError(path, f"gives {model_id} the graph {graph!r}, which is not a file of graphs/; {REMEDY}")
    return record


def _weights_url(model_id: str, direct: str | None) -> str:
    """The published weights when the build has a remote, else the build's own next to the pages."""
    return direct or f"{SITE_FOLDER}/weights/{model_id}.safetensors"


def model_entry(browser: dict, model_id: str, direct: str | None, prefix: str = "") -> dict:
    """The panel's data attributes for one model (``prefix``: 'lung-' for the lung model a lesion_b model needs);
    URLs relative to the site's root."""
    entry = browser["models"][model_id]
    return {f"{prefix}model": model_id, f"{prefix}graph": f"{SITE_FOLDER}/{entry['graph']}",
            f"{prefix}weights": _weights_url(model_id, direct), f"{prefix}inputs": ",".join(entry["inputs"]),
            f"{prefix}orientation": entry.get("orientation") or ""}  # fmt: skip


def lung_leader(board, browser: dict) -> str | None:
    """The leading lung model of the grid (the one leader rule) among those with a browser graph: what finds a
    scan's lungs."""
    lungs = board[(board["experiment"] == "lung") & (board["source"] == "grid") & board["rank"].notna()
                  & board["id"].isin(list(browser["models"]))]  # fmt: skip
    return None if lungs.empty else str(leader_row(lungs)["id"])


def panel(browser: dict | None, board, model_id: str, direct_of) -> dict | None:
    """Everything a model page's panel needs, or None where the model has no browser graph. ``direct_of(id)``:
    the published weights' URL of a model, or None."""
    if not browser or model_id not in browser["models"]:
        return None
    entry = browser["models"][model_id]
    data = model_entry(browser, model_id, direct_of(model_id))
    data["weights-mb"] = f"{entry['weights_bytes'] / 1e6:.0f}"
    if experiment(entry["experiment"]).inside_lungs:
        lung = lung_leader(board, browser)
        if lung is not None:
            data.update(model_entry(browser, lung, direct_of(lung), "lung-"))
    data["test-volume"] = f"{SITE_FOLDER}/{browser['test_volume']['file']}"
    data["test-name"] = browser["test_volume"]["name"]
    return data


def copy_graphs(browser_dir: Path, docs: Path) -> None:
    """The graphs and the test volume into the site (docs/try/); the weights are placed after mkdocs."""
    target = docs / SITE_FOLDER
    shutil.copytree(Path(browser_dir) / "graphs", target / "graphs")
    index = read_json(Path(browser_dir) / INDEX, REMEDY)
    shutil.copyfile(Path(browser_dir) / index["test_volume"]["file"], target / index["test_volume"]["file"])


def place_weights(browser: dict | None, public: Path, models_dir: Path = MODELS_DIR) -> int:
    """A build without a published remote: each model's weights next to the pages (public/try/weights/), as hard
    links where possible; returns the bytes placed. Models without their weights here are skipped (their panel
    says the weights could not be fetched)."""
    if not browser:
        return 0
    target = Path(public) / SITE_FOLDER / "weights"
    target.mkdir(parents=True, exist_ok=True)
    placed = 0
    for model_id in browser["models"]:
        source = Path(models_dir) / model_id / WEIGHTS
        if not source.is_file():
            continue
        destination = target / f"{model_id}.safetensors"
        try:
            os.link(source, destination)
        except OSError:  # another file system, or links not allowed: a copy
            shutil.copyfile(source, destination)
        placed += destination.stat().st_size
    return placed
