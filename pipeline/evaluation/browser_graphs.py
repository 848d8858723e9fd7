"""Stage browser: what the site's "Try it on your scan" panel runs, for every trained model of the grid.

    python -m pipeline.evaluation.browser_graphs

Writes browser/: one weights-free ONNX graph per kind of model (pipeline.model.browser: models whose
model.safetensors share a layout and whose preprocessing is the same run the same graph on their own weights),
index.json (each model's graph, its inputs, the orientation of its training data, its weights' size), and
test-volume.nii.gz, one of the benchmark's test volumes as the study stores it (Hounsfield units, its own affine),
for "Try with a test volume". The weights are not copied: the site points the browser at the published
model.safetensors (or ships the build's own when it has no published remote).
"""

import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm import tqdm

from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, run_stage
from pipeline.core.outputs import replace_directory
from pipeline.core.paths import BROWSER_DIR, MODELS_DIR, PARAMS_FILE, PREPARED_DIR
from pipeline.core.records import read_train_record
from pipeline.data.prepared import load_meta, load_native
from pipeline.model.browser import OPSET, export_graph, graph_key
from pipeline.model.folder import WEIGHTS, read_preprocessing

TEST_VOLUME = "test-volume.nii.gz"


def write_test_volume(prepared: Path, out: Path) -> str:
    """The first test volume in its native geometry and HU, as a NIfTI file; returns its name."""
    record = load_meta(prepared)["volumes"][0]
    image = load_native(record["dir"], prepared).image  # slices first
    volume = np.moveaxis(np.asarray(image), 0, -1)
    nifti = nib.Nifti1Image(volume, np.asarray(record["affine"], dtype=float))
    nifti.header.set_xyzt_units("mm")
    nib.save(nifti, out)
    return record["name"]


def build(models: list[str], models_dir: Path, prepared: Path, out: Path) -> dict:
    """Graphs and index for the models with weights; each kind of model exported once."""
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    index, graphs = {}, {}
    for model_id in tqdm(models, desc="browser graphs", unit="model"):
        folder = models_dir / model_id
        key = graph_key(folder)
        if key not in graphs:
            graphs[key] = export_graph(folder, out / "graphs" / f"{key}.onnx")
        preprocessing = read_preprocessing(folder)
        index[model_id] = {"graph": f"graphs/{key}.onnx", "inputs": graphs[key]["inputs"],
                           "output": graphs[key]["output"], "experiment": preprocessing["experiment"],
                           "orientation": preprocessing.get("orientation"),
                           "weights_bytes": (folder / WEIGHTS).stat().st_size}  # fmt: skip
    name = write_test_volume(prepared, out / TEST_VOLUME)
    record = {"opset": OPSET, "models": index, "test_volume": {"file": TEST_VOLUME, "name": name},
              "graphs": {f"graphs/{key}.onnx": info["bytes"] for key, info in graphs.items()}}  # fmt: skip
    (out / "index.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def main() -> None:
    parser = ArgumentParser(description="Export the browser graphs of the grid's trained models.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--out", type=Path, default=BROWSER_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_params(args.params)
    trained = [cell.id for cell in params.grid.cells()
               if read_train_record(args.models / cell.id).get("status") == "ok"]  # fmt: skip
    with replace_directory(args.out) as staging:
        record = build(trained, args.models, args.prepared, staging)
    size = sum(record["graphs"].values()) / 1e6
    print(
        f"browser: {len(record['graphs'])} graphs ({size:.1f} MB) for {len(record['models'])} models, test volume "
        f"{record['test_volume']['name']} in {time.perf_counter() - started:.1f} s -> {args.out}/"
    )


if __name__ == "__main__":
    run_stage(main)
