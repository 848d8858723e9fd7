"""Stage browser: what the site's "Try it on your scan" panel runs, for every trained model of the grid.

    python -m pipeline.evaluation.browser_graphs

Writes browser/: one weights-free ONNX graph per kind of model (pipeline.model.browser: models whose
model.safetensors share a layout and whose preprocessing is the same run the same graph on their own weights),
index.json (each model's graph, its inputs, the orientation of its training data, its weights' size), and
test-volume.nii.gz, one of the benchmark's test volumes as the study stores it (Hounsfield units, its own affine),
for "Try with a test volume". The weights are not copied: the site points the browser at the published
model.safetensors (or ships the build's own when it has no published remote).

A graph depends only on its kind (the key: weights layout, inputs, preprocessing) and on the code and library
versions that export it, never on a model's weight values, so the output persists: a graph whose kind, code and
versions are those recorded, and whose file still has its recorded sha256, is kept; only new kinds are exported
(an export takes seconds, and retraining a model changes no graph).
"""

import json
import shutil
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm import tqdm

from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, run_stage
from pipeline.core.fingerprint import code_fingerprint, file_sha256, input_key
from pipeline.core.outputs import read_previous, replace_directory
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


def exporter_key() -> str:
    """What an exported graph depends on beyond its kind: the exporting code and the exporter's libraries."""
    import onnx
    import torch

    return input_key({"code": code_fingerprint("pipeline.model.browser"), "opset": OPSET, "torch": torch.__version__,
                      "onnx": onnx.__version__})  # fmt: skip


def build(models: list[str], models_dir: Path, prepared: Path, out: Path, previous: Path | None = None) -> dict:
    """Graphs and index for the models with weights; each kind of model exported once, or kept from
    ``previous`` (the last output) where it was exported by the same code and libraries."""
    (out / "graphs").mkdir(parents=True, exist_ok=True)
    exporter = exporter_key()
    old = read_previous(previous / "index.json") if previous is not None else {}
    kept = old.get("exports", {}) if old.get("exporter") == exporter else {}
    index, graphs, reused = {}, {}, 0
    for model_id in tqdm(models, desc="browser graphs", unit="model"):
        folder = models_dir / model_id
        key = graph_key(folder)
        if key not in graphs:
            target, stored = out / "graphs" / f"{key}.onnx", kept.get(key)
            source = previous / "graphs" / f"{key}.onnx" if previous is not None else None
            if stored and source.is_file() and file_sha256(source) == stored["sha256"]:
                shutil.copyfile(source, target)
                graphs[key], reused = stored, reused + 1
            else:
                graphs[key] = {**export_graph(folder, target), "sha256": file_sha256(target)}
        preprocessing = read_preprocessing(folder)
        index[model_id] = {"graph": f"graphs/{key}.onnx", "inputs": graphs[key]["inputs"],
                           "output": graphs[key]["output"], "experiment": preprocessing["experiment"],
                           "orientation": preprocessing.get("orientation"),
                           "weights_bytes": (folder / WEIGHTS).stat().st_size}  # fmt: skip
    name = write_test_volume(prepared, out / TEST_VOLUME)
    record = {"opset": OPSET, "models": index, "test_volume": {"file": TEST_VOLUME, "name": name},
              "graphs": {f"graphs/{key}.onnx": info["bytes"] for key, info in graphs.items()},
              "exporter": exporter, "exports": graphs, "reused": reused}  # fmt: skip
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
        record = build(trained, args.models, args.prepared, staging, previous=args.out)
    size = sum(record["graphs"].values()) / 1e6
    print(
        f"browser: {len(record['graphs'])} graphs ({record['reused']} kept, {size:.1f} MB) for "
        f"{len(record['models'])} models, test volume "
        f"{record['test_volume']['name']} in {time.perf_counter() - started:.1f} s -> {args.out}/"
    )


if __name__ == "__main__":
    run_stage(main)
