"""A model's page (and a submission's): its numbers, downloads, the library-only Python that segments a scan, its
viewer volumes, the "Try it on your scan" panel, and the data script the compare view and search read."""

import json
import math
from collections.abc import Callable

from pipeline.core import experiments as experiments_registry
from pipeline.core import submissions
from pipeline.core.experiments import EXPERIMENTS
from pipeline.core.viewer import COLOURS
from pipeline.evaluation.metrics import SCORES
from pipeline.model.folder import WEIGHTS
from pipeline.results import placement
from pipeline.site import charts, try_page
from pipeline.site.context import Provenance, chart_note, page_banner, records
from pipeline.site.data import Results
from pipeline.site.remote import direct_url, model_downloads

PYTHON_SNIPPET = """import json

import nibabel as nib
import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F

folder = "{folder}"  # config.json, model.safetensors, preprocessing.json
model = smp.from_pretrained(folder).eval()
pre = json.load(open(f"{{folder}}/preprocessing.json"))
scan = nib.load("scan.nii.gz")  # Hounsfield units
# turned to the orientation of the training data (exact axis swaps and flips, as predict does); the mask is
# written in this orientation with its own affine, so it lies on the scan in any viewer
codes = tuple(pre.get("orientation") or nib.aff2axcodes(scan.affine))  # a folder without one: as stored
turn = nib.orientations.ornt_transform(
    nib.orientations.io_orientation(scan.affine), nib.orientations.axcodes2ornt(codes)
)
scan = scan.as_reoriented(turn)
hu = np.moveaxis(np.asarray(scan.dataobj, dtype=np.float32), -1, 0)  # (slices, H, W)
size = (pre["size"], pre["size"])
x = torch.from_numpy((hu + pre["hu_offset"]) / pre["hu_scale"])[:, None]
x = F.interpolate(x, size=size, mode="bilinear", antialias=True){lungs}
with torch.no_grad():
    p = torch.sigmoid(torch.cat([model(batch) for batch in x.split(8)]).float())
p = F.interpolate(p, size=hu.shape[1:], mode="bilinear", align_corners=False)[:, 0]
mask = np.moveaxis((p >= 0.5).numpy().astype(np.uint8), 0, -1)  # back to (H, W, slices)
nib.save(nib.Nifti1Image(mask, scan.affine), "mask.nii.gz")
"""


LUNG_INPUT = """
lungs = np.moveaxis(np.asarray(nib.load("lungs.nii.gz").dataobj) > 0, -1, 0).astype(np.float32)
lungs = F.interpolate(torch.from_numpy(lungs)[:, None], size=size, mode="bilinear", antialias=True) >= 0.5
x = x * lungs  # a lesion B model sees the lungs only"""


def python_snippet(model_id: str, experiment: str) -> str:
    """The model page's library-only Python: smp, torch, numpy and nibabel, no project code (a test runs it)."""
    lungs = LUNG_INPUT if experiments_registry.experiment(experiment).inside_lungs else ""
    return PYTHON_SNIPPET.format(folder=model_id, lungs=lungs).rstrip("\n")


def _checkpoint(metrics: dict) -> dict | None:
    record = metrics.get("checkpoint")
    if not isinstance(record, dict) or not {"bytes", "sha256", "md5"} <= set(record):
        return None
    return {"megabytes": record["bytes"] / 1e6, "sha256": record["sha256"], "md5": record["md5"]}


def model_context(results: Results, model_id: str, provenance: Provenance) -> dict:
    model = results.models[model_id]
    metrics = model.metrics
    evaluated = model.evaluated
    checkpoint = _checkpoint(metrics)
    # Links built from dvc.lock: text like any other value on the page (escaped there), never trusted markup. The
    # weights' sha256 is the training record's where its md5 is the manifest's: 600 weights are not read again.
    downloads = {}
    if provenance.remote_url:
        known = {WEIGHTS: checkpoint} if checkpoint else None
        downloads = model_downloads(provenance.remote_url, model_id, provenance.dvc_cache, known)
    direct = downloads.get(WEIGHTS, (None, None))[0]
    same = results.leaderboard[results.leaderboard["experiment"] == metrics["experiment"]]
    note = chart_note(results)
    return {
        "banner": page_banner(results),
        "m": metrics,
        "evaluated": evaluated,
        "ranked": int((same["status"] == "ok").sum()),
        "volumes": records(model.volumes) if evaluated else [],
        "seeds": records(model.seeds),
        "checkpoint": checkpoint,
        "loss_chart": charts.loss_curves(model.history, metrics["best_epoch"], note) if evaluated else None,
        "volume_chart": charts.volume_bars(model.volumes, note) if evaluated else None,
        "mask_image": evaluated and (results.figures / "masks" / f"{model_id}.png").exists(),
        "slices": results.slices.get(metrics["experiment"], []),
        "direct_url": direct,
        "python_snippet": python_snippet(model_id, metrics["experiment"]),
        "downloads": downloads,
        "remote_url": provenance.remote_url,
        "repo_url": provenance.repo_url,
        "revision": provenance.revision,
        "train_inputs": provenance.train_inputs,
        "train_params": json.dumps(provenance.train_inputs.get("train", {}), indent=2, sort_keys=True),
        "speed_device": results.summary["speed"].get("device"),
        "tolerance": _tolerance(metrics["experiment"], results),
        "implementation": results.summary["implementation"],
        "viewers": viewer_entries(results, model_id),
        "try_panel": try_page.panel(results.browser, results.leaderboard, model_id, published_weights(provenance))
        if evaluated
        else None,
        "viewer_colours": VIEWER_COLOURS,
    }


def submission_context(results: Results, model_id: str) -> dict:
    """A submission's page: what it is, how it scored, how it compares with the baselines, what was scored."""
    model = results.models[model_id]
    metrics, about = model.metrics, model.metrics["submission"]
    same = results.leaderboard[results.leaderboard["experiment"] == metrics["experiment"]]
    kind = about["kind"]
    notes = {
        "predictions": "the submitted masks resized to it as the ground truth is (coverage of at least a half)",
        "smp": "the model's own output there" if about.get("input") == "the prepared test slices" else
        "its masks on each scan's grid resized to it as the ground truth is",
    }  # fmt: skip
    notes["onnx"] = notes["smp"]
    return {
        "banner": page_banner(results), "m": metrics, "meta": metrics["metadata"], "about": about,
        "kind_title": submissions.KIND_TITLES[kind], "payload": submissions.PAYLOADS[kind],
        "ranked": int((same["status"] == "ok").sum()), "comparisons": metrics["comparisons"],
        "size_factor": placement.SIZE_FACTOR, "volumes": records(model.volumes),
        "volume_chart": charts.volume_bars(model.volumes, chart_note(results)),
        "tolerance": _tolerance(metrics["experiment"], results), "viewers": viewer_entries(results, model_id),
        "viewer_colours": VIEWER_COLOURS, "files": sorted(about["files"].items()),
        "working_size_note": notes[kind], "margin": results.summary["separations"]["relevant_difference"],
    }  # fmt: skip


# The viewer draws the prediction in the colours of the mask pictures (pipeline.core.viewer).
VIEWER_COLOURS = ";".join(",".join(map(str, COLOURS[name])) for name in ("tp", "fp", "fn"))


def viewer_entries(results: Results, model_id: str) -> list[dict]:
    """The volumes a model's viewer shows: its CT's key and its prediction's key (a submission's, from its
    score record: the score stage writes its viewer data)."""
    model = results.models[model_id]
    if model.external:
        volumes = [v for v in model.metrics.get("viewer", []) if isinstance(v, str) and v.isalnum()]
        names = {submissions.case_id(name): name for name in model.metrics["test_volumes"]}
    else:
        volumes = results.viewer.get("models", {}).get(model_id, [])
        names = results.viewer.get("volumes", {})
    typical = set(results.viewer.get("typical", {}).values())
    return [{"volume": names.get(v, v), "ct": f"ct-{v}", "labels": f"{model_id}--{v}", "typical": v in typical}
            for v in volumes]  # fmt: skip


def _tolerance(name: str, results: Results) -> float:
    return results.summary["tolerances"][EXPERIMENTS[name].target]


def model_data(results: Results, model_id: str) -> dict:
    """What the compare view needs of one model, written as data/models/<id>.js (loaded on demand)."""
    model = results.models[model_id]
    m = model.metrics
    keys = ("id", "experiment", "architecture", "encoder", "encoder_weights", "status", "status_reason", "dice",
            "dice_ci_low", "dice_ci_high", "nsd", "nsd_ci_low", "nsd_ci_high", "hd95", "hd95_median",
            "hd95_median_ci_low", "hd95_median_ci_high",
            "sensitivity", "specificity", "precision", "rank", "rank_low", "rank_high", "tier", "params_m", "gflops",
            "infer_images_per_s", "seed_dice_sd", "seeds", "paper_dice")  # fmt: skip
    record = {key: m.get(key) for key in keys}  # metrics.json holds the model's leaderboard row (aggregate)
    record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
    columns = ["volume", *SCORES, "nsd", "hd95"]
    record["volumes"] = records(model.volumes[columns]) if model.evaluated else []
    record["history"] = charts.history_rows(model.history, f"{model_id} ") if not model.history.empty else []
    record["source"] = m.get("source", "grid")
    record["mask"] = f"img/masks/{model_id}.png" if (results.figures / "masks" / f"{model_id}.png").exists() else None
    record["viewer"] = viewer_entries(results, model_id)
    return record


def model_entry(results: Results, row: dict) -> dict:
    """A model in data/models.js: what the compare view's picker and the search box match and show."""
    entry = {"id": row["id"], "experiment": row["experiment"], "status": row["status"], "dice": row["dice"],
             "source": row["source"]}  # fmt: skip
    if row["source"] == "external":
        entry["title"] = results.models[row["id"]].metrics["metadata"]["title"]
    return entry


def published_weights(provenance: Provenance) -> Callable[[str], str | None]:
    """The URL of a model's weights in the published remote (None in a build without one), each found once."""
    found: dict[str, str | None] = {}

    def url(model_id: str) -> str | None:
        if provenance.remote_url and model_id not in found:
            found[model_id] = direct_url(provenance.remote_url, model_id, provenance.dvc_cache)
        return found.get(model_id)

    return url
