"""A ``summary.json`` in the layout of nnU-Net's ``nnUNetv2_evaluate_folder``, with this benchmark's NSD and HD95.

nnU-Net writes ``metric_per_case`` (per case: the two files and, per label, Dice, IoU, TP, FP, FN, TN,
n_pred, n_ref), ``mean`` (per label, the mean over cases) and ``foreground_mean`` (the mean over labels); its
users can set our scores beside theirs key for key. Our additions: ``NSD`` and ``HD95`` per case and in the
means, and ``benchmark``, which says where our rules differ from nnU-Net's: Dice (and IoU) are 1 when a case's
target and prediction are both empty, where nnU-Net gives NaN; a case with a target and no prediction has the
scan's diagonal as HD95. The counts are voxels on each scan's own grid; label "1" is the foreground.
"""

import json
import math
from pathlib import Path

import numpy as np

from pipeline.core.outputs import write_text_atomically

LABEL = "1"


def _counts(row: dict, voxels: int) -> dict:
    """TP, FP, FN, TN of a volume from its Dice and voxel counts (Dice = 2 TP / (n_pred + n_ref), exactly)."""
    predicted, target = int(row["predicted_voxels"]), int(row["target_voxels"])
    tp = round(row["dice"] * (predicted + target) / 2) if predicted + target else 0
    return {"TP": tp, "FP": predicted - tp, "FN": target - tp, "TN": voxels - predicted - target + tp,
            "n_pred": predicted, "n_ref": target}  # fmt: skip


def case_metrics(row: dict, voxels: int) -> dict:
    counts = _counts(row, voxels)
    union = counts["TP"] + counts["FP"] + counts["FN"]
    return {"Dice": row["dice"], "IoU": counts["TP"] / union if union else 1.0, **counts, "NSD": row["nsd"],
            "HD95": row["hd95"]}  # fmt: skip


def summary(rows: list[dict], predictions: dict[str, str], references: dict[str, str],
            voxels: dict[str, int], nsd_tolerance_mm: float) -> dict:  # fmt: skip
    """The summary of one entry's per-volume rows (as the evaluation writes them)."""
    cases = [{"prediction_file": predictions[row["volume"]], "reference_file": references[row["volume"]],
              "metrics": {LABEL: case_metrics(row, voxels[row["volume"]])}} for row in rows]  # fmt: skip
    keys = list(cases[0]["metrics"][LABEL]) if cases else []
    mean = {LABEL: {key: float(np.mean([case["metrics"][LABEL][key] for case in cases])) for key in keys}}
    return {
        "metric_per_case": cases, "mean": mean, "foreground_mean": dict(mean[LABEL]),
        "benchmark": {
            "NSD": f"normalised surface distance at {nsd_tolerance_mm:g} mm", "HD95": "95th percentile Hausdorff "
            "distance in mm, the larger of the two directed 95th percentiles (MONAI)",
            "empty": "Dice and IoU are 1 when target and prediction are both empty (nnU-Net: NaN); a case with a "
            "target and no prediction has the scan's diagonal as HD95",
        },
    }  # fmt: skip


def write_summary(path: Path, content: dict) -> None:
    """Write it atomically; every number is finite by construction (no NaN in our rules)."""
    if any(isinstance(v, float) and not math.isfinite(v) for v in content["foreground_mean"].values()):
        raise ValueError("a mean is not finite")
    write_text_atomically(Path(path), json.dumps(content, indent=2) + "\n")
