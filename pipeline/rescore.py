"""Score the build's models on your own labelled scans, and rank them with the benchmark's own statistics.

    python -m pipeline.rescore --images my/scans --labels my/labels --experiment lung --out rescored/
    python -m pipeline.rescore --images my/scans --labels my/lesions --experiment lesion_b --lungs my/lungs \\
        --models 'lesion_b-unet-*' --out rescored/

Which of the published baselines hold up on *your* scanner's data? Each scan in ``--images`` (a NIfTI file, or a
folder holding one DICOM series) is paired with the label file of the same name in ``--labels`` (``case.nii.gz``
for ``case.nii.gz`` or for the series folder ``case/``): lung labels (0, 1, 2) for the lung experiment, lesion
labels (0-3) for the lesion experiments. A lesion_b model sees the scan only inside the lungs: give the lungs
(``--lungs``, named like the labels) or the build's leading lung model computes them, as ``predict --lung-model``
does.

The scans are brought to the orientation of the models' training data (pipeline.data.orientation: exact axis
swaps and flips, which change no score), prepared by the preprocess stage's own code, and every model is scored
by the evaluate stage's own code: native geometry, Dice, NSD and HD95, the same empty-mask rules, Student t
intervals. The models are ranked with the aggregate stage's procedure (tiers and rank sets over every pair,
pipeline.results.ranking), on the scans where every model's Dice is defined, and the order is compared with the
published one (Kendall's tau). The claims are about these checkpoints on these scans, nothing wider.

Written to ``--out`` (replaced whole, never inside the project's published folders): leaderboard.csv (one row
per model), volumes.csv (one row per model and scan) and report.html (one page, no script). Nothing is
published, and nothing in the project changes. A refusal is one ``error:`` line and exit status 2.
"""

import fnmatch
import html
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats
from tqdm import tqdm

from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.experiments import NAMES as EXPERIMENTS
from pipeline.core.experiments import experiment as experiment_of
from pipeline.core.outputs import read_table, replace_directory
from pipeline.core.paths import MODELS_DIR, PARAMS_FILE, PREPARED_DIR, PUBLIC_DIR, RESULTS_DIR
from pipeline.data import orientation, rawdata
from pipeline.data.preprocess import write_meta, write_test_set
from pipeline.evaluation.evaluate import evaluate_model
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.predict import load_model, read_scan
from pipeline.results import ranking
from pipeline.results.aggregate import leader_row

LABELS = {"lung": rawdata.LUNG_LABELS, "lesion": rawdata.LESION_LABELS}
RANKABLE = ("ok", "degenerate")  # models that were trained to the end and tested
COLUMNS = ("id", "rank", "rank_low", "rank_high", "tier", "dice", "dice_ci_low", "dice_ci_high", "nsd", "hd95",
           "volumes", "published_rank", "published_dice")  # fmt: skip


def case_name(path: Path) -> str:
    """A case's name: a NIfTI file's name without .nii/.nii.gz, or a DICOM series folder's name."""
    return path.name.removesuffix(".gz").removesuffix(".nii")


def pair_cases(images: Path, labels: Path) -> list[tuple[str, Path, Path]]:
    """(case, scan, labels) for every scan in ``images``, each with its label file; one error for an unpaired
    one either way."""
    for folder in (images, labels):
        if not folder.is_dir():
            raise DataError(folder, "is not a folder")
    scans = sorted(p for p in images.iterdir() if not p.name.startswith(".") and
                   (p.is_dir() or p.name.endswith((".nii", ".nii.gz"))))  # fmt: skip
    if not scans:
        raise DataError(images, "holds no scans (.nii, .nii.gz, or a folder per DICOM series)")
    label_files = {case_name(p): p for p in labels.iterdir() if p.name.endswith((".nii", ".nii.gz"))}
    pairs = []
    for scan in scans:
        name = case_name(scan)
        if name not in label_files:
            raise DataError(scan, f"has no labels: expected {labels / (name + '.nii.gz')}")
        pairs.append((name, scan, label_files.pop(name)))
    if label_files:
        stray = sorted(label_files.values())[0]
        raise DataError(stray, f"labels no scan in {images}")
    return pairs


def _labels(path: Path, structure: str, shape: tuple) -> np.ndarray:
    data = rawdata.read_labels(path, LABELS[structure])
    if data.shape != shape:
        raise DataError(path, f"has shape {data.shape}; its scan has {shape}")
    return data


def read_case(name: str, scan: Path, labels: Path, lungs: Path | None, structure: str, target: str | None,
              lung_segmenter=None) -> rawdata.Scan:  # fmt: skip
    """One case as the study's Scan named ``name``, in the models' orientation: the target labels in their place,
    the lungs from ``lungs`` or from ``lung_segmenter`` where the experiment needs them, zeros where it does not."""
    volume, like, _ = read_scan(scan)
    turn = orientation.reorientation(like.affine, volume.shape, target)
    truth = _labels(labels, structure, volume.shape)
    lung = np.zeros(volume.shape, dtype=np.uint8)
    if lungs is not None:
        lung = _labels(lungs, "lung", volume.shape)
    elif lung_segmenter is not None:
        lung = lung_segmenter.segment_scan(volume, like.affine)
    zooms = np.array(like.header.get_zooms()[:3], dtype=float)
    spacing = np.empty(3)
    spacing[turn.forward[:, 0].astype(int)] = zooms  # each input axis's spacing goes where that axis goes
    affine = like.affine @ nib.orientations.inv_ornt_aff(turn.forward, volume.shape)
    image = turn.to_model(volume)
    lung, truth = turn.to_model(lung), turn.to_model(truth)
    lung_labels, lesion_labels = (truth, np.zeros_like(truth)) if structure == "lung" else (lung, truth)
    return rawdata.Scan(name, np.ascontiguousarray(image), np.ascontiguousarray(lung_labels),
                        np.ascontiguousarray(lesion_labels), affine, tuple(float(s) for s in spacing))  # fmt: skip


def select_models(board: pd.DataFrame, experiment: str, pattern: str, models_dir: Path) -> tuple[list[str], list[str]]:
    """(ids to score, ids without a local folder) of the build's trained models of ``experiment`` matching."""
    rows = board[(board["experiment"] == experiment) & (board["source"] == "grid") & board["status"].isin(RANKABLE)]
    ids = [i for i in rows["id"] if fnmatch.fnmatchcase(i, pattern)]
    if not ids:
        raise PipelineError(f"--models {pattern}: matches none of the build's trained {experiment} models")
    missing = [i for i in ids if not (models_dir / i / "model.safetensors").is_file()]
    return [i for i in ids if i not in missing], missing


def rank(records: dict[str, dict], volumes: pd.DataFrame, board: pd.DataFrame, settings: ranking.RankSettings,
         ) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """The leaderboard of the rescored models and what the ranking says: tiers and rank sets from the
    benchmark's procedure on the scans where every model's Dice is defined, and Kendall's tau with the published
    order of the same models."""
    ids = list(records)
    wide = volumes.pivot(index="id", columns="volume", values="dice").loc[ids]
    defined = wide.columns[wide.notna().all(axis=0)]
    rows = {i: {"id": i, **{k: records[i].get(k) for k in ("dice", "dice_ci_low", "dice_ci_high", "nsd", "hd95")},
                "volumes": int(records[i]["dice_volumes"])} for i in ids}  # fmt: skip
    about = {"cases": len(wide.columns), "ranked_on": len(defined), "models": len(ids)}
    if len(ids) >= 2 and len(defined) >= 2:
        result = ranking.bootstrap_ranking(ids, wide[defined].to_numpy(dtype=float), True, settings.draws,
                                           settings.confidence, settings.seed, settings.permutations)  # fmt: skip
        for row in result.rows():
            rows[row["id"]].update({k: row[k] for k in ("rank", "rank_low", "rank_high", "tier")})
        about["tier1"] = int((result.tier == 1).sum())
    published = board.set_index("id")
    for i in ids:
        rows[i]["published_rank"] = published.at[i, "rank"] if pd.notna(published.at[i, "rank"]) else None
        rows[i]["published_dice"] = published.at[i, "dice"]
    frame = pd.DataFrame(list(rows.values()), columns=list(COLUMNS))
    if frame["rank"].notna().any():
        frame = frame.sort_values(["rank", "id"])
    else:  # too few models or scans to rank: best Dice first
        frame = frame.sort_values(["dice", "id"], ascending=[False, True])
    both = frame.dropna(subset=["rank", "published_rank"])
    if len(both) >= 2:
        tau = stats.kendalltau(both["rank"], both["published_rank"])
        about["kendall_tau"], about["kendall_p"], about["compared"] = float(tau.statistic), float(tau.pvalue), len(both)
    return frame, about


def _number(value, decimals: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{decimals}f}"


def report(frame: pd.DataFrame, about: dict, experiment: str, confidence: float, skipped: list[str]) -> str:
    """One self-contained page (no script, no outside request): the table and what it means."""
    level = f"{confidence:.0%}"
    rows = []
    for row in frame.to_dict("records"):
        ranks = "" if pd.isna(row["rank"]) else f"{int(row['rank'])} ({int(row['rank_low'])}-{int(row['rank_high'])})"
        low, high = row["dice_ci_low"], row["dice_ci_high"]
        interval = f"{_number(low)}-{_number(high)}" if low is not None and not pd.isna(low) else "too few scans"
        cells = [row["id"], ranks, "" if pd.isna(row["tier"]) else int(row["tier"]), _number(row["dice"]), interval,
                 _number(row["nsd"]), _number(row["hd95"], 2), row["volumes"],
                 "" if row["published_rank"] is None or pd.isna(row["published_rank"]) else int(row["published_rank"]),
                 _number(row["published_dice"])]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    tau = (f"Kendall's tau between this order and the published one: {about['kendall_tau']:.2f} over "
           f"{about['compared']} models (p = {about['kendall_p']:.3f})." if "kendall_tau" in about
           else "Too few models to compare the order with the published one.")  # fmt: skip
    tiers = (f"{about['tier1']} of {about['models']} models cannot be excluded from being the best on these scans "
             f"(tier 1, {level} family-wise over every pair)." if "tier1" in about
             else "Ranks need at least two models and two scans on which every model's Dice is defined.")  # fmt: skip
    missing = (f"<p>Not scored (no local weights; <code>dvc pull</code> fetches them): "
               f"{html.escape(', '.join(skipped))}.</p>" if skipped else "")  # fmt: skip
    head = ["model", "rank (rank set)", "tier", "Dice", f"Dice {level} CI", "NSD", "HD95 (mm)", "scans",
            "published rank", "published Dice"]  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Baselines rescored on your scans: {html.escape(experiment)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;line-height:1.5}}
table{{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}}th,td{{padding:.3rem .5rem;
border-bottom:1px solid #ccc;text-align:left}}.scroll{{overflow-x:auto}}</style></head><body>
<h1>Baselines rescored on your scans: {html.escape(experiment_of(experiment).title)}</h1>
<p>{about["models"]} of the benchmark's checkpoints, scored by its own code on your {about["cases"]} scans
(ranked on the {about["ranked_on"]} where every model's Dice is defined). {tiers} {tau}
The intervals are Student t over your scans; the claims are about these checkpoints on these scans.</p>
{missing}<div class="scroll"><table><thead><tr>{"".join(f'<th scope="col">{h}</th>' for h in head)}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></div></body></html>
"""


def lung_model(board: pd.DataFrame, experiment: str, lungs_given: bool, models_dir: Path, device: str):
    """The build's leading lung model where ``experiment`` needs lungs and none are given, else None."""
    if not experiment_of(experiment).inside_lungs or lungs_given:
        return None
    lung_rows = board[(board["experiment"] == "lung") & (board["source"] == "grid") & board["rank"].notna()]
    if lung_rows.empty:
        raise PipelineError(f"{experiment} needs the scans' lungs: pass --lungs (no ranked lung model here)")
    lung_id = str(leader_row(lung_rows)["id"])
    print(f"rescore: lungs from the leading lung model {lung_id}")
    return load_model(models_dir / lung_id, device)


def score_models(segmenters: dict, scans: list, experiment: str, params) -> tuple[dict, list[dict]]:
    """Every model's evaluation record and per-volume rows on ``scans``, prepared in a scratch folder by the
    preprocess stage's own code (as the study's test set) and scored by the evaluate stage's."""
    records, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="rescore-") as work:
        prepared = Path(work)
        volumes = write_test_set(scans, prepared, params.preprocess)
        preprocess = {k: getattr(params.preprocess, k) for k in ("size", "hu_offset", "hu_scale")}
        splits = {"train": 0, "val": 0, "test": sum(s.slices for s in scans)}
        write_meta(prepared, "rescore", "your scans", preprocess, splits, volumes)
        test = HeldOutSet.load(prepared)
        with tqdm(segmenters.items(), desc="models", unit="model") as bar:
            for model_id, segmenter in bar:
                records[model_id], volume_rows = evaluate_model(segmenter.model, experiment, test, params.evaluate)
                rows += [{"id": model_id, **row} for row in volume_rows]
    return records, rows


def main() -> None:
    parser = ArgumentParser(description="Score the build's models on your own labelled scans and rank them.")
    parser.add_argument("--images", type=Path, required=True, help="your scans: NIfTI files or DICOM series folders")
    parser.add_argument("--labels", type=Path, required=True, help="their labels, one NIfTI file per scan, same names")
    parser.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    parser.add_argument(
        "--lungs", type=Path, help="lung labels of the scans (lesion_b; else a lung model computes them)"
    )
    parser.add_argument("--models", default="*", help="which models (a glob on the id; default: all)")
    parser.add_argument("--out", type=Path, required=True, help="the folder the report is written to (replaced)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    args = parser.parse_args()
    started = time.perf_counter()
    out = args.out.resolve()
    for published in (args.results, args.models_dir, PUBLIC_DIR, PREPARED_DIR):
        if out == published.resolve() or published.resolve() in out.parents:
            raise PipelineError(f"--out {args.out}: inside the project's {published}/; give a folder of your own")
    params = load_params(args.params)
    board = read_table(args.results / "leaderboard.csv", ("id", "experiment", "source", "status", "rank", "dice"),
                       "build the results first (`dvc repro`)")  # fmt: skip
    chosen = experiment_of(args.experiment)
    ids, skipped = select_models(board, args.experiment, args.models, args.models_dir)
    if not ids:
        raise PipelineError(f"none of the {len(skipped)} matching models has its weights here; fetch them "
                            f"(`dvc pull {args.models_dir}/{skipped[0]}`)")  # fmt: skip
    cases = pair_cases(args.images, args.labels)
    lungs = {}
    if chosen.inside_lungs and args.lungs is not None:
        lungs = dict((name, path) for name, _, path in pair_cases(args.images, args.lungs))
    lung_segmenter = lung_model(board, args.experiment, args.lungs is not None, args.models_dir, args.device)
    segmenters = {i: load_model(args.models_dir / i, args.device) for i in ids}
    targets = {s.orientation for s in segmenters.values()}
    if len(targets) > 1:
        raise PipelineError(
            f"the chosen models were trained on data of different orientations {sorted(map(str, targets))}"
        )
    target = targets.pop()
    # prepared under the study's volume names (1.nii.gz, ...): any case name is safe as a folder name that way
    scans = []
    with tqdm(cases, desc="scans", unit="scan") as bar:  # closed on an error: the error line starts a line
        for number, (name, scan, labels) in enumerate(bar, start=1):
            scans.append(read_case(f"{number}.nii.gz", scan, labels, lungs.get(name), chosen.target, target,
                                   lung_segmenter))  # fmt: skip
    case_of = {f"{number}.nii.gz": name for number, (name, _, _) in enumerate(cases, start=1)}
    records, rows = score_models(segmenters, scans, args.experiment, params)
    volumes_frame = pd.DataFrame(rows)
    volumes_frame["volume"] = volumes_frame["volume"].map(case_of)
    frame, about = rank(records, volumes_frame, board, ranking.RankSettings.from_params(params))
    with replace_directory(args.out) as staging:
        frame.to_csv(staging / "leaderboard.csv", index=False, float_format="%.4f")
        volumes_frame.to_csv(staging / "volumes.csv", index=False, float_format="%.6g")
        (staging / "report.html").write_text(report(frame, about, args.experiment, params.evaluate.confidence, skipped))
    leader = frame.iloc[0]
    tau = f"; Kendall's tau with the published order {about['kendall_tau']:.2f}" if "kendall_tau" in about else ""
    print(
        f"rescore: {len(ids)} {args.experiment} models on {len(scans)} scans; best {leader['id']} (Dice "
        f"{leader['dice']:.4f}){tau}; {len(skipped)} without weights -> {args.out}/ "
        f"in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    run_stage(main)
