"""Stage ``evaluate``: every training run of the grid (main runs and repeats) on the test volumes.

    python -m pipeline.evaluation.evaluate                 (as dvc.yaml runs it)
    python -m pipeline.evaluation.evaluate --runs ID,ID    (only these runs: what the grid runner's engines send)
    python -m pipeline.evaluation.evaluate --pending       (print the runs whose result is not current, as JSON)

Reads params `grid`, `repeats`, `evaluate` and `train.device`, models/<run>/ and data/prepared/; writes
evaluation/<run>/ for every run:

- ``metrics.json``: correct metrics per volume in each scan's native geometry (the headline ``dice``,
  ``nsd``, ``hd95``, ... are means over the test volumes, with Student's t intervals over volumes and
  how many volumes each mean covers), per slice and pooled at the working size and pooled in native
  geometry; the paper-compatible metrics of the published code; the ``key`` it was computed for;
- ``volumes.csv``: one row per test volume: overlap scores, NSD and HD95, voxels predicted and in the target;
- ``key.json``: the key the result was computed for and the sha256 of the two files above.

One model's work per changed model: each run's result is stored with a key made of everything it depends on
(the checkpoint's sha256, the prepared test data, the evaluation code: every project module this stage
imports, pipeline.core.fingerprint, the `evaluate` params and the device type). A run whose stored key
matches is reused, so adding or retraining one model evaluates that model, and a change to the metrics code
or params evaluates all. Reuse is verified: the key holds the sha256 of the checkpoint file itself (which must
be the one its train.json records: a swapped file is refused), and a stored result is reused only when its
files still have the digests recorded with its key; an altered result is evaluated again, and the last line
says so. The output is persistent in DVC (``persist:
true``): the stage starts from its previous results. The last line says how many were evaluated and reused.

Runs are evaluated in parallel processes (``evaluate.workers``), each with one CPU thread, so that a result
never depends on how many ran at once; inference runs on the GPU when there is one.
"""

import csv
import json
import os
import shutil
import time
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.core.cells import parse_run_id
from pipeline.core.config import EvaluateParams, Params, load_params
from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.fingerprint import code_fingerprint, input_key, result_digests
from pipeline.core.outputs import read_previous, replace_directory
from pipeline.core.paths import EVALUATION_DIR, MODELS_DIR, PARAMS_FILE, PREPARED_DIR
from pipeline.core.processes import worker_pool
from pipeline.core.records import read_train_record
from pipeline.data.prepared import load_native, native_target
from pipeline.evaluation import metrics, surface
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model import checkpoints
from pipeline.model.device import select_device
from pipeline.model.folder import resolve, verified_checkpoint

STAGE = "pipeline.evaluation.evaluate"  # its code fingerprint keys every stored result

VOLUME_FIELDS = ("volume", "slices", "dice", "sensitivity", "specificity", "precision", "nsd", "hd95",
                 "predicted_voxels", "target_voxels", "dice_working_size")  # fmt: skip
VOLUME_SCORES = ("dice", "sensitivity", "specificity", "precision", "nsd", "hd95")


def _round(values: dict) -> dict:
    return {key: (None if np.isnan(value) else round(float(value), 6)) for key, value in values.items()}


def score_volumes(
    native_prediction, working: np.ndarray, experiment: str, test: HeldOutSet, params: EvaluateParams
) -> tuple[dict, list[dict]]:
    """(metrics record, per-volume rows) of one set of predictions: ``native_prediction(name, shape)`` gives a
    volume's binary prediction on the scan's own grid (slices first), where every score that the leaderboard
    ranks is computed; ``working`` (N, S, S) the same predictions at the working size of the prepared test
    slices, for the per-slice, pooled and paper-compatible metrics. The one scoring path of the grid's models
    and of submissions."""
    targets = test.experiment(experiment)[1]
    working_counts = metrics.confusion(working, targets)
    rows, native_counts = [], []
    for name, index in test.volume_rows.items():
        native = load_native(test.volume_dirs[name], test.prepared_dir)
        truth = native_target(native, experiment)
        prediction = np.asarray(native_prediction(name, truth.shape), dtype=bool)
        counts = metrics.confusion(prediction, truth)
        native_counts.append(counts)
        overlap = metrics.scores(counts.total())
        nsd, hd95 = surface.surface_scores(prediction, truth, test.spacing[name], params.nsd_tolerance_mm(experiment))
        rows.append({
            "volume": name, "slices": len(index), **{k: float(v[0]) for k, v in overlap.items()},
            "nsd": nsd, "hd95": hd95, "predicted_voxels": int(prediction.sum()), "target_voxels": int(truth.sum()),
            "dice_working_size": float(metrics.scores(working_counts.select(index).total())["dice"][0]),
        })  # fmt: skip
    native = metrics.Counts.concatenate(native_counts)
    record: dict = {}
    for name in VOLUME_SCORES:
        values = np.array([row[name] for row in rows], dtype=np.float64)
        record[name] = metrics.nanmean(values)
        record[f"{name}_volumes"] = metrics.defined(values)
        low, high = metrics.mean_interval(values, params.confidence, metrics.BOUNDS.get(name, (0.0, 1.0)))
        record[f"{name}_ci_low"], record[f"{name}_ci_high"] = low, high
    record.update(
        **{f"slice_{name}": value for name, value in metrics.mean_scores(working_counts).items()},
        **{f"pooled_{name}": value for name, value in metrics.pooled_scores(working_counts).items()},
        **{f"native_pooled_{name}": value for name, value in metrics.pooled_scores(native).items()},
        **metrics.paper_scores(working_counts),
    )
    counts = {key: value for key, value in record.items() if key.endswith("_volumes")}
    rounded = {**_round({k: v for k, v in record.items() if k not in counts}), **counts}
    spacing = {name: list(test.spacing[name]) for name in test.volume_rows}  # mm per axis, slices first
    return {**rounded, "test_volumes": list(test.volume_rows), "test_spacing_mm": spacing}, rows


def evaluate_probabilities(probs: np.ndarray, experiment: str, test: HeldOutSet,
                           params: EvaluateParams) -> tuple[dict, list[dict]]:  # fmt: skip
    """``score_volumes`` of a network's probabilities on the prepared test slices: thresholded at the working
    size, and resized to each scan's grid (bilinear) and thresholded there."""
    from pipeline.model.inference import to_native

    def native(name: str, shape: tuple) -> np.ndarray:
        return to_native(probs[test.volume_rows[name]], shape[1], shape[2], params.threshold)

    return score_volumes(native, probs >= params.threshold, experiment, test, params)


def evaluate_model(model, experiment: str, test: HeldOutSet, params: EvaluateParams) -> tuple[dict, list[dict]]:
    """(metrics record, per-volume rows) of one model on the prepared test slices."""
    from pipeline.model.inference import probabilities

    return evaluate_probabilities(probabilities(model, test.experiment(experiment)[0]), experiment, test, params)


def evaluate_masks(masks: dict[str, np.ndarray], experiment: str, test: HeldOutSet,
                   params: EvaluateParams) -> tuple[dict, list[dict]]:  # fmt: skip
    """``score_volumes`` of predictions given on each scan's grid (slices first, binary): scored there as they
    are, and resized to the working size as preprocessing resizes the ground truth (coverage >= 0.5)."""
    from pipeline.data.transforms import resize_masks

    targets = test.experiment(experiment)[1]
    working = np.zeros(targets.shape, dtype=bool)
    size = targets.shape[1:]
    for name, index in test.volume_rows.items():
        working[index] = resize_masks(masks[name].astype(np.uint8), *size).astype(bool)
    return score_volumes(lambda name, shape: masks[name], working, experiment, test, params)


def write_volumes(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=VOLUME_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})


RESULT_FILES = ("metrics.json", "volumes.csv")
KEY_FILE = "key.json"


def evaluation_key(train: dict, checkpoint: str, data: str, code: str, params: EvaluateParams, device_type: str) -> str:
    """Everything a run's evaluation depends on. ``workers`` only changes how fast, so it is left out."""
    settings = {k: v for k, v in asdict(params).items() if k != "workers"}
    if train["status"] == "ok":
        source = {"checkpoint": checkpoint, "experiment": train["experiment"]}
    else:
        source = {"status": train["status"], "error": train.get("error", "")}
    inputs = {"run": train["id"], **source, "data": data, "code": code, "params": settings, "device": device_type}
    return input_key(inputs)


def write_keyed_result(folder: Path, key: str, record: dict, rows: list[dict]) -> None:
    """A result's files (metrics.json, volumes.csv) and the key of what it was computed from, with their digests
    (what ``stored_result`` checks): evaluate's per run and score's per submission, in a staged folder."""
    (folder / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_volumes(rows, folder / "volumes.csv")
    stored = {"key": key, "files": result_digests(folder, RESULT_FILES)}
    (folder / KEY_FILE).write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")


def stored_result(folder: Path, key: str) -> str:
    """Whether the stored result in ``folder`` is current: "current", "stale" (other inputs, or none stored) or
    "altered" (computed for these inputs, but its files no longer have the digests recorded with it)."""
    record = read_previous(folder / KEY_FILE)
    if record.get("key") != key:
        return "stale"
    try:
        digests = result_digests(folder, RESULT_FILES)
    except OSError:
        return "altered"
    return "current" if record.get("files") == digests else "altered"


@dataclass(frozen=True)
class Job:
    run_id: str
    key: str
    train: dict
    altered: bool = False  # the stored result was edited after it was computed


def evaluate_run(job: Job, models_dir: Path, out_dir: Path, test: HeldOutSet, params: EvaluateParams, device) -> None:
    """Evaluate one run and replace its folder of results (never half-written)."""
    record = {"id": job.run_id, "status": job.train["status"], "error": job.train.get("error", ""), "key": job.key}
    rows: list[dict] = []
    if job.train["status"] == "ok":
        folder = models_dir / job.run_id
        model, preprocessing = checkpoints.load(resolve(folder, models_dir), device)
        if preprocessing["experiment"] != job.train["experiment"]:
            raise DataError(folder, f"holds a {preprocessing['experiment']} model, train.json says otherwise")
        scores, rows = evaluate_model(model, job.train["experiment"], test, params)
        record.update(scores, implementation={"surface": surface.IMPLEMENTATION, "library": surface.library_version()})
    with replace_directory(out_dir / job.run_id) as staging:
        write_keyed_result(staging, job.key, record, rows)


# A worker process's state: the test set and settings, loaded once per process (``_start_worker``).
_WORKER: dict = {}


def _start_worker(prepared_dir: Path, models_dir: Path, out_dir: Path, params: EvaluateParams, device: str) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(test=HeldOutSet.load(prepared_dir), models=models_dir, out=out_dir, params=params, device=device)


def _work(job: Job) -> str:
    try:
        evaluate_run(job, _WORKER["models"], _WORKER["out"], _WORKER["test"], _WORKER["params"], _WORKER["device"])
    except PipelineError as error:
        return str(error)
    return ""


def worker_count(params: EvaluateParams, jobs: int) -> int:
    """``evaluate.workers``, or one per CPU this process may use (a scheduler's allotment, not the machine's)."""
    return max(1, min(params.workers or len(os.sched_getaffinity(0)), jobs))


def run_jobs(jobs: list[Job], settings: tuple, workers: int) -> None:
    """Evaluate the jobs in ``workers`` processes (here when 1), with progress and an ETA."""
    import torch

    bar = tqdm(total=len(jobs), desc="evaluate", unit="model", dynamic_ncols=True)
    threads = torch.get_num_threads()
    try:
        if workers == 1:
            _start_worker(*settings)
            for job in jobs:
                if problem := _work(job):
                    raise PipelineError(problem)
                bar.update(1)
            return
        with worker_pool(workers, _start_worker, settings) as pool:  # spawned: torch in a forked child can deadlock
            futures = [pool.submit(_work, job) for job in jobs]
            for future in as_completed(futures):
                if problem := future.result():
                    for other in futures:
                        other.cancel()
                    raise PipelineError(problem)
                bar.update(1)
    finally:
        torch.set_num_threads(threads)  # evaluated here: this process's own setting comes back
        bar.close()


def plan(runs: list[str], models_dir: Path, out_dir: Path, key_of) -> tuple[list[Job], list[str]]:
    """(jobs to evaluate, runs whose stored result is current). ``key_of(train, checkpoint sha256)``."""
    jobs, reused = [], []
    for run_id in runs:
        train = read_train_record(models_dir / run_id)
        if train["id"] != run_id:
            raise DataError(models_dir / run_id / "train.json", f"is the record of {train['id']!r}, not {run_id}")
        checkpoint = verified_checkpoint(models_dir / run_id, train) if train["status"] == "ok" else ""
        key = key_of(train, checkpoint)
        state = stored_result(out_dir / run_id, key)
        if state == "current":
            reused.append(run_id)
        else:
            jobs.append(Job(run_id, key, train, altered=state == "altered"))
    return jobs, reused


def plan_runs(runs: list[str], params: Params, device_type: str, prepared: Path, models: Path,
              out: Path) -> tuple[list[Job], list[str]]:  # fmt: skip
    """``plan`` with each run's key made from the prepared test data, the code, the params and the device."""
    data, code = HeldOutSet.load(prepared).fingerprint(), code_fingerprint(STAGE)

    def key_of(train: dict, checkpoint: str) -> str:
        return evaluation_key(train, checkpoint, data, code, params.evaluate, device_type)

    return plan(runs, models, out, key_of)


def pending_runs(params_file: Path = PARAMS_FILE, prepared: Path = PREPARED_DIR, models: Path = MODELS_DIR,
                 out: Path = EVALUATION_DIR) -> list[str]:  # fmt: skip
    """The runs whose stored evaluation is not current: what the grid runner sends to its engine."""
    params = load_params(params_file)
    device = select_device(params.train.device)
    jobs, _ = plan_runs([run.id for run in params.runs()], params, device.type, prepared, models, out)
    return [job.run_id for job in jobs]


def main() -> None:
    parser = ArgumentParser(description="Evaluate every training run of the grid on the test set.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--models", type=Path, default=MODELS_DIR)
    parser.add_argument("--out", type=Path, default=EVALUATION_DIR)
    parser.add_argument("--runs", help="comma-separated run ids: evaluate only these (the others are left alone)")
    parser.add_argument("--pending", action="store_true",
                        help="only print, as a JSON list, the runs whose stored result is not current")  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    params = load_params(args.params)
    if args.pending:  # for the grid runner, whose driver imports no torch
        print(json.dumps(pending_runs(args.params, args.prepared, args.models, args.out)))
        return
    runs = [run.id for run in params.runs()]
    if args.runs:
        chosen = [name.strip() for name in args.runs.split(",") if name.strip()]
        for name in chosen:
            try:
                parse_run_id(name)
            except ValueError as error:
                raise PipelineError(f"--runs: {error}") from None
        outside = [name for name in chosen if name not in runs]
        if outside:
            raise PipelineError(f"--runs: {outside[0]} is not a run of the grid in {args.params}")
        runs = chosen
    device = select_device(params.train.device)
    jobs, reused = plan_runs(runs, params, device.type, args.prepared, args.models, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.runs:  # the output holds exactly the grid's runs
        for stale in sorted(set(p.name for p in args.out.iterdir() if not p.name.startswith(".")) - set(runs)):
            shutil.rmtree(args.out / stale)
    workers = worker_count(params.evaluate, len(jobs))
    altered = [job.run_id for job in jobs if job.altered]
    for run_id in altered:
        print(f"evaluate: {run_id}: its stored result was changed after it was computed; evaluating it again")
    if jobs:
        settings = (args.prepared, args.models, args.out, params.evaluate, device.type)
        run_jobs(jobs, settings, workers)
    print(
        f"evaluate: {len(jobs)} evaluated{f' ({len(altered)} of them altered)' if altered else ''}, {len(reused)} "
        f"reused in {time.perf_counter() - started:.1f} s ({workers} process{'es' if workers > 1 else ''} on "
        f"{device.type})"
    )


if __name__ == "__main__":
    run_stage(main)
