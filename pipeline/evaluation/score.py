"""Stage ``score``: every submission (submissions/<name>/, pipeline.core.submissions) on the test set.

    python -m pipeline.evaluation.score   (as dvc.yaml runs it; reads params `grid`, `evaluate`, `speed`, `viewer`)

Writes scores/<name>/ for every submission made for these test scans, in evaluate's format (``metrics.json``,
``volumes.csv``, ``key.json``), scored by the grid's own path (pipeline.evaluation.external), with

- in ``metrics.json``, ``submission``: what was scored (kind, the sha256 of each file), what is known of the
  model (parameters, GFLOPs, inference images/s and the device timed), the preprocessing it was run with;
- ``viewer/``: the volume viewer's data of its predictions, as the figures stage writes them for a model of
  the grid (``<name>--<volume>.js``, ``ct-<volume>.js``).

Each result is kept with a key of everything it depends on (the scored files' sha256, the preprocessing, the
prepared test data, the scoring code, the params, the device type), so only a new or changed submission is
scored; the rest are reused. Before scoring, every file is hashed and must be the one its record names.
Predictions made for other test scans (another profile, other data) are not scored, and the last line says
how many; a submission whose name is a model of the grid is refused.
"""

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.core import submissions
from pipeline.core.config import Params, load_params
from pipeline.core.errors import ArgumentParser, DataError, run_stage
from pipeline.core.fingerprint import code_fingerprint, file_sha256, input_key
from pipeline.core.outputs import replace_directory, write_text_atomically
from pipeline.core.paths import PARAMS_FILE, PREPARED_DIR, SCORES_DIR, SUBMISSIONS_DIR
from pipeline.core.viewer import as_script
from pipeline.data import predictions
from pipeline.data.prepared import load_meta, load_native, native_target
from pipeline.evaluation import external, surface, viewer_data
from pipeline.evaluation.evaluate import stored_result, write_keyed_result
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model.device import select_device

STAGE = "pipeline.evaluation.score"
INDEX = "index.json"  # which submissions were scored, and which were made for other test scans


def check_files(folder: Path, record: dict) -> None:
    """Every file scored is the one the record names (sha256): a swapped or altered file is refused."""
    root = submissions.payload(folder, record)
    if not root.exists():
        raise DataError(root, f"is missing; fetch it (`dvc pull {root}.dvc`) or submit again")
    for path in submissions.payload_files(folder, record):
        if not path.is_file():
            raise DataError(path, f"is missing; fetch it (`dvc pull {root}.dvc`) or submit again")
        if file_sha256(path) != record["files"][path.name]:
            raise DataError(path, "is not the file that was submitted (its sha256 differs from submission.json)")
    if root.is_dir():
        extra = sorted({p.name for p in root.iterdir() if not p.name.startswith(".")} - set(record["files"]))
        if extra:
            raise DataError(root / extra[0], "is not listed in submission.json: files are added only by submitting")


def score_submission(folder: Path, record: dict, test: HeldOutSet, params: Params, prepared_preprocess: dict,
                     device: torch.device) -> external.Scored:  # fmt: skip
    """One submission scored (``check_files`` first)."""
    root = submissions.payload(folder, record)
    if record["kind"] == "predictions":
        files = predictions.match_volumes(root, list(test.volume_rows))
        masks = external.read_predictions(files, test)
        return external.score_masks(masks, record["experiment"], test, params.evaluate)
    defaults = record["preprocessing"] or external.default_preprocessing(record["experiment"], prepared_preprocess)
    network = external.load_network(root, record["kind"], record["experiment"], defaults, device)
    return external.score_model(network, record["experiment"], test, params, prepared_preprocess, device)


def viewer_volumes(scored: external.Scored, test: HeldOutSet, requested: list[str]) -> list[str]:
    """The volume folders the viewer shows, chosen as the figures stage chooses them for a grid model."""
    voxels = {test.volume_dirs[name]: row["target_voxels"] for name, row in zip(test.volume_rows, scored.rows,
                                                                                  strict=True)}  # fmt: skip

    def worst() -> str:
        return test.volume_dirs[min(scored.rows, key=lambda row: (row["dice"], row["volume"]))["volume"]]

    typical = viewer_data.median_target_volume(voxels)
    return viewer_data.shown_volumes(requested, typical, worst, test.volume_dirs)


def write_viewer(scored: external.Scored, name: str, experiment: str, test: HeldOutSet, params: Params,
                 folder: Path) -> list[str]:  # fmt: skip
    """The viewer's scripts of one submission into ``folder``; the volume folders shown."""
    folder.mkdir()
    names = {volume_dir: volume for volume, volume_dir in test.volume_dirs.items()}
    shown = viewer_volumes(scored, test, params.viewer.volumes)
    for volume_dir in shown:
        volume = names[volume_dir]
        native = load_native(volume_dir, test.prepared_dir)
        truth = native_target(native, experiment)
        labels = viewer_data.label_volume(scored.native[volume], truth, test.spacing[volume], params.viewer.size)
        (folder / f"{name}--{volume_dir}.js").write_text(as_script(f"{name}--{volume_dir}", labels))
        ct = viewer_data.ct_volume(native.image, test.spacing[volume], params.viewer.size)
        (folder / f"ct-{volume_dir}.js").write_text(as_script(f"ct-{volume_dir}", ct))
    return shown


def score_key(name: str, record: dict, data: str, code: str, params: Params, device_type: str) -> str:
    evaluate = {k: v for k, v in asdict(params.evaluate).items() if k != "workers"}
    scored = {k: record[k] for k in ("experiment", "kind", "files", "preprocessing")}
    settings = {"evaluate": evaluate, "speed": asdict(params.speed), "viewer": asdict(params.viewer)}
    return input_key({"submission": name, **scored, "data": data, "code": code, **settings, "device": device_type})


def write_result(out: Path, name: str, key: str, record: dict, scored: external.Scored, test: HeldOutSet,
                 params: Params, meta: dict) -> None:  # fmt: skip
    """scores/<name>/, replaced as a whole (never half-written)."""
    evaluation = {
        "id": name, "status": "ok", "error": "", "key": key, **scored.record, "data_source": meta["data_source"],
        "profile": meta["profile"],
        "implementation": {"surface": surface.IMPLEMENTATION, "library": surface.library_version()},
        "submission": {**scored.about, "files": record["files"], "experiment": record["experiment"]},
    }  # fmt: skip
    with replace_directory(out / name) as staging:
        shown = write_viewer(scored, name, record["experiment"], test, params, staging / "viewer")
        evaluation["viewer"] = shown
        write_keyed_result(staging, key, evaluation, scored.rows)


def main() -> None:
    parser = ArgumentParser(description="Score every submission on the test set.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--submissions", type=Path, default=SUBMISSIONS_DIR)
    parser.add_argument("--out", type=Path, default=SCORES_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_params(args.params)
    records = submissions.read_all(args.submissions)
    submissions.refuse_grid_names(records, params, args.submissions)
    test = HeldOutSet.load(args.prepared)
    meta = load_meta(args.prepared)
    prepared_preprocess = meta["preprocess"]
    this_test_set = test.native_fingerprint()
    device = select_device(params.train.device)
    data, code = test.fingerprint(), code_fingerprint(STAGE)
    args.out.mkdir(parents=True, exist_ok=True)
    current, other_test_set, reused, jobs = set(), [], 0, []
    for name, record in records.items():
        if record["kind"] == "predictions" and record["test_set"] != this_test_set:
            other_test_set.append(name)
            continue
        current.add(name)
        check_files(args.submissions / name, record)  # hashed every time: a stored score is of these very files
        key = score_key(name, record, data, code, params, device.type)
        if stored_result(args.out / name, key) == "current":
            reused += 1
        else:
            jobs.append((name, record, key))
    folders = {p.name for p in args.out.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for stale in sorted(folders - current):
        shutil.rmtree(args.out / stale)  # a removed submission, or one made for other scans
    for name, record, key in tqdm(jobs, desc="score", unit="submission", disable=not jobs):
        scored = score_submission(args.submissions / name, record, test, params, prepared_preprocess, device)
        write_result(args.out, name, key, record, scored, test, params, meta)
    index = {"scored": sorted(current), "other_test_set": sorted(other_test_set)}
    write_text_atomically(args.out / INDEX, json.dumps(index, indent=2) + "\n")
    if other_test_set:
        print(f"score: not scored, made for other test scans: {', '.join(other_test_set)}")
    print(f"score: {len(jobs)} scored, {reused} reused in {time.perf_counter() - started:.1f} s -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
