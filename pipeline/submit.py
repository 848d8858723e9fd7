"""Submit an outside model or a folder of predicted masks: checked, scored and placed among the grid's models.

    python -m pipeline.submit NAME --experiment lung --predictions preds/          # masks, one per test volume
    python -m pipeline.submit NAME --experiment lung --model my-smp-folder/        # segmentation-models-pytorch
    python -m pipeline.submit NAME --experiment lung --model model.onnx            # ONNX (onnxruntime)
    python -m pipeline.submit NAME ... --model model.onnx --onnx-contract native   # ONNX, its own preprocessing
    python -m pipeline.submit NAME ... --dry-run                                   # score and place; write nothing

Predictions are the test volumes' masks (data/raw/rp_im/*.nii.gz), binary NIfTI in each scan's own geometry,
named as the volumes or in nnU-Net's layout (``--case-map`` for any other naming; pipeline.data.predictions
gives the rules). A model is run by the benchmark itself (pipeline.evaluation.external), which also counts its
parameters and times it. Everything is checked and scored before anything is written; a refusal is one
``error:`` line and exit status 2, with submissions/, results/ and public/ unchanged.

Without ``--dry-run`` the submission is written to submissions/NAME/ (submission.json, and the predictions or
model added to DVC with ``dvc add``): ``dvc repro`` then scores it (stage ``score``), ranks it among the grid's
models (``aggregate``) and publishes it (``site``). ``--summary-json FILE`` also writes the scores in the layout
of nnU-Net's ``summary.json`` (with NSD and HD95), dry run or not.
"""

import argparse
import datetime
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from pipeline.core import submissions
from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, PipelineError, parent_death_signal, run_stage
from pipeline.core.experiments import NAMES as EXPERIMENTS
from pipeline.core.experiments import experiment as experiment_of
from pipeline.core.fingerprint import file_sha256
from pipeline.core.outputs import replace_directory, write_text_atomically
from pipeline.core.paths import PARAMS_FILE, PREPARED_DIR, RAW_DIR, RESULTS_DIR, SUBMISSIONS_DIR
from pipeline.core.processes import dvc_command, dvc_message
from pipeline.data import predictions, rawdata
from pipeline.data.prepared import load_meta
from pipeline.evaluation import external, nnunet
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model.device import select_device
from pipeline.model.folder import CONFIG, PREPROCESSING, WEIGHTS
from pipeline.model.onnx_network import CONTRACTS
from pipeline.results import placement, ranking

MODEL_FILES = (CONFIG, WEIGHTS, PREPROCESSING)  # what is kept of a submitted smp folder


def parse_args() -> argparse.Namespace:
    parser = ArgumentParser(description="Score an outside model or predictions on the benchmark and "
                                                 "submit it to the leaderboard.")  # fmt: skip
    parser.add_argument("name", help="the submission's id: lower-case letters, digits and hyphens")
    parser.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--predictions", type=Path, help="a folder of predicted masks, one per test volume (NIfTI)")
    what.add_argument("--model", type=Path, help="a segmentation-models-pytorch folder or an .onnx file")
    parser.add_argument("--case-map", type=Path, help="CSV (case, volume): which prediction is which test volume")
    parser.add_argument("--onnx-contract", choices=CONTRACTS, default="benchmark",
                        help="an .onnx model's contract: benchmark (normalised slices at the working size in, "
                             "logits out; default) or native (HU slices at the scan's size in, probabilities "
                             "out: your own preprocessing is scored)")  # fmt: skip
    for field, (limit, what_it_is) in submissions.TEXT_FIELDS.items():
        parser.add_argument(f"--{field.replace('_', '-')}", default="", help=f"{what_it_is} (at most {limit})")
    parser.add_argument("--url", default="", help="the model's web page (http or https)")
    parser.add_argument("--paper", default="", help="the paper describing it (http or https)")
    parser.add_argument("--params-m", type=float, help="millions of parameters (predictions only; models are counted)")
    parser.add_argument("--dry-run", action="store_true", help="check, score and place it; write nothing")
    parser.add_argument("--replace", action="store_true", help="replace the submission of that name")
    parser.add_argument("--summary-json", type=Path, help="also write the scores as nnU-Net's summary.json")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--prepared", type=Path, default=PREPARED_DIR)
    parser.add_argument("--raw", type=Path, default=RAW_DIR)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--submissions", type=Path, default=SUBMISSIONS_DIR)
    return parser.parse_args()


def metadata(args: argparse.Namespace) -> dict:
    """The submission's free-text fields and links, checked."""
    fields = {field: submissions.check_text(field, getattr(args, field)) for field in submissions.TEXT_FIELDS}
    fields.update({field: submissions.check_url(field, getattr(args, field)) for field in submissions.URL_FIELDS})
    if args.params_m is not None:
        if args.model is not None:
            raise PipelineError("--params-m: a model's parameters are counted from it; give it with --predictions")
        if not 0 < args.params_m <= 1e6 or args.params_m != args.params_m:
            raise PipelineError(f"--params-m {args.params_m}: expected millions of parameters, above 0")
    return fields


def check_destination(args: argparse.Namespace, params) -> None:
    """Refuse a name that is a model of the grid or, without --replace, another submission's."""
    if args.name in submissions.grid_names(params):
        raise PipelineError(f"{args.name}: is a model of the grid; choose another name")
    if (args.submissions / args.name).exists() and not args.replace:
        raise PipelineError(f"{args.submissions / args.name}: a submission of that name exists; choose another "
                            "name, or pass --replace")  # fmt: skip
    if args.summary_json is not None and (args.summary_json.is_dir() or not args.summary_json.parent.is_dir()):
        raise PipelineError(f"--summary-json {args.summary_json}: give a file name in an existing folder")


def score(args: argparse.Namespace, params, test: HeldOutSet, meta: dict, device):
    """(scored, files to keep: name in the submission -> source path, kind, preprocessing recorded)."""
    if args.predictions is not None:
        volumes = list(test.volume_rows)
        case_map = predictions.read_case_map(args.case_map, volumes) if args.case_map else None
        files = predictions.match_volumes(args.predictions, volumes, case_map)
        masks = external.read_predictions(files, test)
        scored = external.score_masks(masks, args.experiment, test, params.evaluate)
        return scored, {volume: files[volume] for volume in volumes}, "predictions", None
    if args.case_map is not None:
        raise PipelineError("--case-map: only for --predictions")
    kind = external.model_kind(args.model)
    if args.onnx_contract != "benchmark" and kind != "onnx":
        raise PipelineError(f"--onnx-contract {args.onnx_contract}: only for an .onnx --model ({args.model} is not)")
    has_own = kind == "smp" and (args.model / PREPROCESSING).is_file()
    recorded = None if has_own else external.default_preprocessing(args.experiment, meta["preprocess"])
    if args.onnx_contract == "native":
        recorded = external.native_contract(args.experiment)
    network = external.load_network(args.model, kind, args.experiment, recorded or {}, device)
    if recorded is not None:
        recorded = network.preprocessing  # an ONNX graph's fixed input size included
    scored = external.score_model(network, args.experiment, test, params, meta["preprocess"], device)
    if kind == "onnx":
        files = {submissions.PAYLOADS["onnx"]: args.model}
    else:
        files = {name: args.model / name for name in MODEL_FILES if (args.model / name).is_file()}
    return scored, files, kind, recorded


def _interval(record: dict, name: str, decimals: int, unit: str = "") -> str:
    return (f"{record[name]:.{decimals}f}{unit} [{record[f'{name}_ci_low']:.{decimals}f}, "
            f"{record[f'{name}_ci_high']:.{decimals}f}]")  # fmt: skip


def report(args: argparse.Namespace, scored, kind: str, params, meta: dict) -> list[str]:
    """What the entry scored and where it would stand, as lines."""
    record, rows = scored.record, scored.rows
    hd95 = np.array([row["hd95"] for row in rows])
    missed = sum(1 for row in rows if row["target_voxels"] > 0 and row["predicted_voxels"] == 0)
    lines = [
        f"submit: {args.name} ({args.experiment}, {submissions.KIND_TITLES[kind]}): {len(rows)} test volumes "
        f"checked and scored ({meta['data_source']} data, profile {meta['profile']})",
        f"  Dice {_interval(record, 'dice', 4)}  NSD {_interval(record, 'nsd', 4)}  HD95 "
        f"{_interval(record, 'hd95', 2, ' mm')} (median {np.median(hd95):.2f} mm, {missed} missed)",
        f"  ({params.evaluate.confidence:.0%} Student t intervals over the test volumes)",
    ]
    if "params" in scored.about:
        about = scored.about
        lines.append(f"  {about['params'] / 1e6:.2f} M parameters ({about['params_counted']}), "
                     f"{about['infer_images_per_s']:.1f} images/s on {about['speed_device']}")  # fmt: skip
    volumes = [row["volume"] for row in rows]
    baselines, why = placement.read_baselines(args.results, args.experiment, volumes, meta["data_source"])
    if baselines is None:
        return [*lines, f"  not placed: {why}"]
    entry = {metric: np.array([row[metric] for row in rows], dtype=float) for metric in ranking.RANKED}
    settings = ranking.RankSettings.from_params(params)
    placed = placement.place(args.name, entry, baselines, {"dice": True}, settings)["dice"]
    lines.append(f"  among the {len(baselines.ids)} ranked checkpoints of {args.experiment} in {args.results}/ plus "
                 f"this one ({placed['models']} models, as the leaderboard ranks it): rank {placed['rank']} on Dice "
                 f"({settings.confidence:.0%} rank set {placed['rank_low']}-{placed['rank_high']}), "
                 f"{ranking.tier_words(placed['tier'], placed['rank'])}, P(rank 1) {placed['p_rank1']}")  # fmt: skip
    size = scored.about.get("params", args.params_m * 1e6 if args.params_m else None)
    similar = placement.similar_size(size / 1e6 if size else None, baselines)
    against = placement.compared_with(baselines, size / 1e6 if size else None)
    rows = placement.comparisons(entry["dice"], baselines, against, margin=settings.relevant_difference,
                                 alpha=settings.alpha)  # fmt: skip
    for row in rows:
        role = "the leader" if row["against"] == against[0] else "similar size"
        lines.append(f"  against {role} {row['against']}: Dice {row['difference']:+.4f}, better on {row['wins']} "
                     f"of {row['pairs']} volumes, worse on {row['losses']}; p = {row['p_holm']:.3f} (beyond "
                     f"+-{settings.relevant_difference:g}, exact Wilcoxon, Holm over {len(against)}): "
                     f"{row['verdict']}")  # fmt: skip
    if size and not similar:
        lines.append(f"  no checkpoint of the grid within a factor of {placement.SIZE_FACTOR:g} of its size")
    return lines


def write_nnunet_summary(path: Path, scored, files: dict, args, params, test: HeldOutSet) -> None:
    target = experiment_of(args.experiment).target
    folder = rawdata.TEST_LUNG_DIR if target == "lung" else rawdata.TEST_LESION_DIR
    # Both paths absolute, as nnU-Net writes them: the file can be read from anywhere.
    predictions_of = {volume: str(Path(files.get(volume, args.model)).resolve())
                      for volume in test.volume_rows}  # fmt: skip
    references = {volume: str((args.raw / folder / volume).resolve()) for volume in test.volume_rows}
    voxels = {volume: int(np.prod(test.shapes[volume])) for volume in test.volume_rows}
    tolerance = params.evaluate.nsd_tolerance_mm(args.experiment)
    nnunet.write_summary(path, nnunet.summary(scored.rows, predictions_of, references, voxels, tolerance))


def write_submission(args, fields: dict, scored, files: dict, kind: str, recorded, test: HeldOutSet,
                     meta: dict) -> Path:  # fmt: skip
    """submissions/NAME/ written whole: staged, swapped in, its payload added to DVC; on any failure the
    previous state is back (a replaced submission included)."""
    target = args.submissions / args.name
    payload_name = submissions.PAYLOADS[kind]
    record = {
        "name": args.name, "experiment": args.experiment, "kind": kind, **fields,
        "params_m": args.params_m, "files": {}, "preprocessing": recorded, "data_source": meta["data_source"],
        "profile": meta["profile"], "test_set": test.native_fingerprint(),
        "submitted": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip

    def name_free(path: Path) -> None:  # under the lock: two runs of one name must not both find it free
        if path.exists() and not args.replace:
            raise PipelineError(f"{path}: a submission of that name exists; choose another name, or pass --replace")

    # A refusal of dvc, a full disk, Ctrl-C: core.outputs puts the previous state back.
    with replace_directory(target, check=name_free, then=lambda path: _dvc_add(path / payload_name)) as staging:
        if kind == "onnx":
            shutil.copyfile(files[payload_name], staging / payload_name)
            record["files"] = {payload_name: file_sha256(staging / payload_name)}
        else:
            (staging / payload_name).mkdir()
            for name, source in files.items():
                shutil.copyfile(source, staging / payload_name / name)
                record["files"][name] = file_sha256(staging / payload_name / name)
        write_text_atomically(staging / submissions.RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return target


def _dvc_add(path: Path) -> None:
    # The child ends with this process (kill -9 of submit must not leave `dvc add` finishing the submission).
    result = subprocess.run(dvc_command("add", "--quiet", str(path)), capture_output=True, text=True,
                            preexec_fn=parent_death_signal)  # fmt: skip
    if result.returncode != 0:
        raise PipelineError(f"{path}: `dvc add` failed: {dvc_message(result)}")


def main() -> None:
    args = parse_args()
    submissions.check_name(args.name)
    fields = metadata(args)
    params = load_params(args.params)
    check_destination(args, params)
    if not args.dry_run and not Path(".dvc").is_dir():
        raise PipelineError("submit: run it from the project's checkout (a DVC repository), or pass --dry-run")
    test = HeldOutSet.load(args.prepared)
    meta = load_meta(args.prepared)
    device = select_device(args.device, "--device")
    scored, files, kind, recorded = score(args, params, test, meta, device)
    for line in report(args, scored, kind, params, meta):
        print(line)
    if args.summary_json is not None:
        write_nnunet_summary(args.summary_json, scored, files, args, params, test)
        print(f"submit: wrote {args.summary_json} (nnU-Net's summary.json layout, with NSD and HD95)")
    if args.dry_run:
        print("submit: dry run: nothing written to submissions/")
        return
    target = write_submission(args, fields, scored, files, kind, recorded, test, meta)
    payload_name = submissions.PAYLOADS[kind]
    print(f"submit: wrote {target}/ ({submissions.RECORD}, {payload_name} added to DVC). Next: `dvc repro` scores, "
          f"ranks and publishes it; `git add {target}` and `dvc push` share it.")  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
