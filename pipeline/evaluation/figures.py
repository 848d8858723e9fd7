"""Stage ``figures``: the pictures the website shows that need the models or the data, not only results/.

    python -m pipeline.evaluation.figures   (as dvc.yaml runs it; reads params `grid`, `evaluate.threshold`, `viewer`)

Writes figures/ (a DVC output of its own: at the paper's 512 px these images are too big for git, and a
persistent one: each model's pictures are kept with the key they were drawn for in ``index.json``, the
checkpoint's hash (of the file itself, which must be the one its train.json records), the shown slices,
the drawing code and settings, with the sha256 of each file drawn, so that a changed model, or a picture
altered since, is drawn again and the others are reused; the last line says how many of each):

- ``masks/<id>.png``: every model's prediction on the same few test slices of its experiment (the slices
  with the largest target area, from different volumes where possible), true positives green, false
  positives red, false negatives blue, over the CT image (the paper's Fig. 3, for every model);
- ``filters/<id>.png``: the first convolution's kernels of the models of the first architecture on the lung
  experiment, one per encoder and initialisation, on the paper's fixed colour range (Fig. 8);
- ``intensity.json``: histograms of the normalised test inputs, all pixels and pixels inside the target,
  per experiment (Fig. 2);
- ``slices.json``: which test slices the mask pictures show;
- ``viewer/``: the volume viewer's data (pipeline.evaluation.viewer_data): ``ct-<volume>.js`` once per test
  volume shown, ``<id>--<volume>.js`` per model and volume (its prediction against the ground truth), and
  ``viewer.json`` saying which volumes each model shows (params ``viewer``).
"""

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from pipeline.core.cells import Cell, parse_cell_id
from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, PipelineError, run_stage
from pipeline.core.experiments import EXPERIMENTS
from pipeline.core.fingerprint import code_fingerprint, file_sha256, input_key
from pipeline.core.outputs import read_previous, write_text_atomically, written_atomically
from pipeline.core.paths import EVALUATION_DIR, FIGURES_DIR, MODELS_DIR, PARAMS_FILE, PREPARED_DIR
from pipeline.core.records import read_train_record
from pipeline.core.viewer import COLOURS, as_script
from pipeline.data.prepared import experiment_arrays, load_meta, load_native, native_target
from pipeline.evaluation import viewer_data
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model import checkpoints
from pipeline.model.device import select_device
from pipeline.model.folder import resolve, verified_checkpoint
from pipeline.model.inference import probabilities, to_native

STAGE = "pipeline.evaluation.figures"  # its code fingerprint keys every model's pictures
SLICES_SHOWN = 3
PANEL_PIXELS = 192  # each slice is drawn at least this big (nearest-neighbour), so 64 px demo slices are legible
WINDOW_HU = (-1100.0, -200.0)  # the lung window the mask pictures show the CT in (air to soft tissue)
OVERLAY_ALPHA = 0.6
FILTER_RANGE = 0.4  # the paper's Fig. 8 colour range
HISTOGRAM_BINS = np.linspace(-1.5, 3.5, 101)


def shown_slices(targets: np.ndarray, volumes: np.ndarray, count: int = SLICES_SHOWN) -> list[int]:
    """Indices of the slices with the largest target area, one per volume first, then any."""
    area = targets.reshape(targets.shape[0], -1).sum(axis=1)
    order = [int(i) for i in np.argsort(-area, kind="stable") if area[i] > 0]
    chosen, seen = [], set()
    for index in order:
        if volumes[index] not in seen:
            chosen.append(index)
            seen.add(volumes[index])
        if len(chosen) == count:
            return sorted(chosen)
    chosen += [i for i in order if i not in chosen][: count - len(chosen)]
    return sorted(chosen)


def normalised_window(preprocess: dict) -> tuple[float, float]:
    """``WINDOW_HU`` in the normalised units of the prepared data, (HU + hu_offset) / hu_scale."""
    low, high = WINDOW_HU
    offset, scale = float(preprocess["hu_offset"]), float(preprocess["hu_scale"])
    return (low + offset) / scale, (high + offset) / scale


def overlay(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """RGB uint8 picture of one slice: the (normalised) CT in grey within ``window``, TP/FP/FN blended in their
    colours."""
    low, high = window
    grey = np.clip((image - low) / (high - low), 0, 1) * 255
    rgb = np.repeat(grey[..., None], 3, axis=2)
    truth, predicted = truth.astype(bool), predicted.astype(bool)
    for name, where in (("tp", truth & predicted), ("fp", ~truth & predicted), ("fn", truth & ~predicted)):
        rgb[where] = (1 - OVERLAY_ALPHA) * rgb[where] + OVERLAY_ALPHA * np.array(COLOURS[name])
    return rgb.astype(np.uint8)


def _enlarged(rgb: np.ndarray) -> Image.Image:
    picture = Image.fromarray(rgb)
    factor = max(1, -(-PANEL_PIXELS // rgb.shape[0]))
    return picture.resize((rgb.shape[1] * factor, rgb.shape[0] * factor), Image.Resampling.NEAREST)


def mask_strip(images: np.ndarray, truths: np.ndarray, predictions: np.ndarray,
               window: tuple[float, float]) -> Image.Image:  # fmt: skip
    """The shown slices side by side, 4 px apart."""
    panels = [_enlarged(overlay(i, t, p, window)) for i, t, p in zip(images, truths, predictions, strict=True)]
    width = sum(panel.width for panel in panels) + 4 * (len(panels) - 1)
    strip = Image.new("RGB", (width, panels[0].height), (255, 255, 255))
    left = 0
    for panel in panels:
        strip.paste(panel, (left, 0))
        left += panel.width + 4
    return strip


def filter_grid(weight: torch.Tensor, limit: float = FILTER_RANGE, columns: int = 8) -> Image.Image:
    """The first convolution's kernels (out, 1, k, k) as a grid, blue negative, red positive, clipped."""
    kernels = weight.detach().float().cpu().numpy()[:, 0][:64]
    count, k = kernels.shape[0], kernels.shape[-1]
    rows = -(-count // columns)
    cell = max(1, 48 // k)
    canvas = np.full((rows * (k * cell + 2), columns * (k * cell + 2), 3), 255, dtype=np.uint8)
    for index, kernel in enumerate(kernels):
        value = np.clip(kernel / limit, -1, 1)
        rgb = np.stack([1 - np.clip(-value, 0, 1), 1 - np.abs(value), 1 - np.clip(value, 0, 1)], axis=-1)
        rgb = np.kron(rgb, np.ones((cell, cell, 1)))
        row, column = divmod(index, columns)
        top, left = row * (k * cell + 2), column * (k * cell + 2)
        canvas[top : top + k * cell, left : left + k * cell] = (rgb * 255).astype(np.uint8)
    return Image.fromarray(canvas)


def first_convolution(model: torch.nn.Module) -> torch.Tensor:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)).weight


def intensity_histograms(test, preprocess: dict) -> dict:
    """Per experiment: density histograms of the normalised inputs, all pixels and inside the target, with the
    normalisation they are in."""
    normalisation = {name: float(preprocess[name]) for name in ("hu_offset", "hu_scale")}
    out = {"bins": [round(float(b), 4) for b in HISTOGRAM_BINS], "normalisation": normalisation, "experiments": {}}
    for experiment in EXPERIMENTS:
        inputs, targets = experiment_arrays(test, experiment)
        inputs = np.asarray(inputs)
        everything, _ = np.histogram(inputs, HISTOGRAM_BINS, density=True)
        inside, _ = np.histogram(inputs[np.asarray(targets).astype(bool)], HISTOGRAM_BINS, density=True)
        out["experiments"][experiment] = {
            "image": [round(float(v), 6) for v in everything],
            "target": [round(float(v), 6) for v in np.nan_to_num(inside)],
        }
    return out


def filter_cells(cells: list[Cell]) -> list[Cell]:
    """The models whose first-layer filters are drawn: the lung experiment, first architecture."""
    lung = [cell for cell in cells if cell.experiment == cells[0].experiment]
    return [cell for cell in lung if cell.architecture == lung[0].architecture]


def figure_key(run_id: str, checkpoint: str, data: str, code: str, settings: dict) -> str:
    """Everything a model's pictures and viewer data depend on (``checkpoint``: the weights' sha256)."""
    return input_key({"run": run_id, "checkpoint": checkpoint, "data": data, "code": code, **settings})


def _drawn(entry, key: str, paths: list[Path]) -> dict | None:
    """The index entry of pictures drawn for ``key`` that are all still as they were drawn, else None."""
    if not isinstance(entry, dict) or entry.get("key") != key or not all(path.is_file() for path in paths):
        return None
    files = {path.name: file_sha256(path) for path in paths}
    return entry if entry.get("files") == files else None


def _entry(key: str, paths: list[Path]) -> dict:
    return {"key": key, "files": {path.name: file_sha256(path) for path in paths}}


@dataclass
class ViewerPlan:
    """Which test volumes the viewer shows, and what it needs to draw them."""

    test: HeldOutSet
    size: int
    typical: dict[str, str]  # experiment -> the volume whose target is of median size
    names: dict[str, str]  # volume folder -> file name

    @classmethod
    def make(cls, test: HeldOutSet, experiments: list[str], requested: list[str], size: int) -> "ViewerPlan":
        names = {folder: name for name, folder in test.volume_dirs.items()}
        for volume in requested:
            if volume not in ("median_target", "worst") and volume not in test.volume_dirs:
                raise PipelineError(f"params: viewer.volumes lists {volume}; the test volumes are "
                                    f"{', '.join(test.volume_dirs)}")  # fmt: skip
        typical = {}
        for experiment in experiments:
            voxels = {}
            for folder in test.volume_dirs.values():
                native = load_native(folder, test.prepared_dir)
                voxels[folder] = int(native_target(native, experiment).sum())
            typical[experiment] = viewer_data.median_target_volume(voxels)
        return cls(test, size, typical, names)

    def volumes(self, requested: list[str], experiment: str, evaluation: Path) -> list[str]:
        """The volume folders shown for one model (``worst`` reads its evaluation)."""

        def worst() -> str:
            scores = pd.read_csv(evaluation / "volumes.csv")
            return self.test.volume_dirs[scores.sort_values(["dice", "volume"]).iloc[0]["volume"]]

        return viewer_data.shown_volumes(requested, self.typical[experiment], worst, self.test.volume_dirs)

    def ct(self, folder: str) -> bytes:
        native = load_native(folder, self.test.prepared_dir)
        return viewer_data.ct_volume(np.asarray(native.image), self.test.spacing[self.names[folder]], self.size)

    def labels(self, model, experiment: str, folder: str, threshold: float) -> bytes:
        """The model's prediction on one test volume, in native geometry as evaluation scores it, as labels."""
        name = self.names[folder]
        inputs, _ = self.test.experiment(experiment)
        rows = self.test.volume_rows[name]
        native = load_native(folder, self.test.prepared_dir)
        truth = native_target(native, experiment)
        prediction = to_native(probabilities(model, np.asarray(inputs)[rows]), *truth.shape[1:], threshold)
        return viewer_data.label_volume(prediction.astype(bool), truth, self.test.spacing[name], self.size)


def _save_png(picture: Image.Image, path: Path) -> None:
    with written_atomically(path, ".png") as partial:
        picture.save(partial, optimize=True)


def shown_arrays(held_out: HeldOutSet, experiments, volumes: np.ndarray) -> tuple[dict, dict]:
    """(the slices each experiment's pictures show, and their (model inputs, targets, plain CT)), read once for
    all models of the experiment."""
    shown, arrays = {}, {}
    for experiment in experiments:
        inputs, targets = held_out.experiment(experiment)
        rows = shown[experiment] = shown_slices(np.asarray(targets), volumes)
        arrays[experiment] = (
            np.asarray(inputs)[rows],
            np.asarray(targets)[rows],
            np.asarray(held_out.split.image)[rows],
        )
    return shown, arrays


def draw_model(model, cell, arrays: tuple, window: tuple, filters: bool, viewer: ViewerPlan, volumes: list[str],
               threshold: float, out: Path) -> None:  # fmt: skip
    """One model's pictures: its masks on the shown slices, its first-layer filters (``filters``) and its
    predictions on the viewer's volumes."""
    inputs, targets, images = arrays
    predicted = probabilities(model, inputs) >= threshold
    _save_png(mask_strip(images, targets, predicted, window), out / "masks" / f"{cell.id}.png")
    if filters:
        _save_png(filter_grid(first_convolution(model)), out / "filters" / f"{cell.id}.png")
    for volume in volumes:
        labels = viewer.labels(model, cell.experiment, volume, threshold)
        write_text_atomically(out / "viewer" / f"{cell.id}--{volume}.js", as_script(f"{cell.id}--{volume}", labels))


def remove_stale(out: Path, index: dict, filtered: set, shown_volumes: dict, needed: list[str]) -> None:
    """Pictures and viewer scripts of models no longer in the grid, no longer finished, or of volumes no longer
    shown."""
    for folder in ("masks", "filters"):
        for picture in (out / folder).glob("*.png"):
            if picture.stem not in index or (folder == "filters" and parse_cell_id(picture.stem) not in filtered):
                picture.unlink()
    kept = {f"ct-{v}.js" for v in needed} | {f"{i}--{v}.js" for i, vs in shown_volumes.items() for v in vs}
    for script in (out / "viewer").glob("*.js"):
        if script.name not in kept:
            script.unlink()


def main() -> None:
    parser = ArgumentParser(description="Draw the website's figures from the models and the test set.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--evaluation", type=Path, default=EVALUATION_DIR)
    parser.add_argument("--out", type=Path, default=FIGURES_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_params(args.params)
    grid = params.grid
    cells = grid.cells()
    device = select_device(params.train.device)
    held_out = HeldOutSet.load(args.prepared)
    test = held_out.split
    with open(args.prepared / "test" / "slices.csv") as handle:
        slice_rows = list(csv.DictReader(handle))
    volumes = np.asarray([row["volume"] for row in slice_rows])
    shown, arrays = shown_arrays(held_out, grid.experiments, volumes)
    filtered = set(filter_cells(cells))
    data = held_out.fingerprint()
    code = code_fingerprint(STAGE)
    preprocess = load_meta(args.prepared)["preprocess"]
    window = normalised_window(preprocess)
    viewer = ViewerPlan.make(held_out, list(grid.experiments), params.viewer.volumes, params.viewer.size)
    for folder in ("masks", "filters", "viewer"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    old, index, drawn, shown_volumes = read_previous(args.out / "index.json"), {}, 0, {}
    for cell in tqdm(cells, desc="figures", unit="model"):
        train = read_train_record(args.models / cell.id)
        if train["status"] != "ok":
            continue
        volumes_shown = viewer.volumes(params.viewer.volumes, cell.experiment, args.evaluation / cell.id)
        shown_volumes[cell.id] = volumes_shown
        settings = {"threshold": params.evaluate.threshold, "device": device.type, "filters": cell in filtered,
                    "viewer": [params.viewer.size, volumes_shown]}  # fmt: skip
        key = figure_key(cell.id, verified_checkpoint(args.models / cell.id, train), data, code, settings)
        outputs = [
            args.out / "masks" / f"{cell.id}.png",
            *([args.out / "filters" / f"{cell.id}.png"] if cell in filtered else []),
            *(args.out / "viewer" / f"{cell.id}--{v}.js" for v in volumes_shown),
        ]
        if (entry := _drawn(old.get(cell.id), key, outputs)) is not None:
            index[cell.id] = entry
            continue
        model, _ = checkpoints.load(resolve(args.models / cell.id, args.models), device)
        draw_model(model, cell, arrays[cell.experiment], window, cell in filtered, viewer, volumes_shown,
                   params.evaluate.threshold, args.out)  # fmt: skip
        index[cell.id] = _entry(key, outputs)
        drawn += 1
    needed = sorted({volume for volumes in shown_volumes.values() for volume in volumes})
    ct_key = figure_key("ct", "", data, code, {"size": params.viewer.size})
    for volume in needed:  # each CT once, whatever the number of models showing it
        path = args.out / "viewer" / f"ct-{volume}.js"
        if _drawn(old.get(f"ct-{volume}"), ct_key, [path]) is None:
            write_text_atomically(path, as_script(f"ct-{volume}", viewer.ct(volume)))
        index[f"ct-{volume}"] = _entry(ct_key, [path])
    remove_stale(args.out, index, filtered, shown_volumes, needed)
    layout = {
        "labels": viewer_data.LABELS, "hu_range": viewer_data.HU_RANGE, "models": shown_volumes,
        "volumes": {folder: viewer.names[folder] for folder in needed}, "typical": viewer.typical,
    }  # fmt: skip
    write_text_atomically(args.out / "viewer" / "viewer.json", json.dumps(layout, indent=2, sort_keys=True) + "\n")
    write_text_atomically(args.out / "intensity.json", json.dumps(intensity_histograms(test, preprocess)) + "\n")
    slices = {experiment: [{"volume": slice_rows[i]["volume"], "slice": int(slice_rows[i]["slice"])} for i in rows]
              for experiment, rows in shown.items()}  # fmt: skip
    write_text_atomically(args.out / "slices.json", json.dumps(slices, indent=2) + "\n")
    write_text_atomically(args.out / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")
    seconds = time.perf_counter() - started
    print(f"figures: {drawn} drawn, {len(shown_volumes) - drawn} reused in {seconds:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
