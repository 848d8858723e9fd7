"""A made-up results/ and figures/ of any grid size, for timing the site and for its snapshot tests.

The numbers are random, not measured: every record says ``data_source: fixture``, and every page built
from it carries the "synthetic results" banner. The files have exactly the layout the aggregate and
figures stages write (summary.json is computed by pipeline.aggregate's own code), so the site generator
cannot tell them apart from real output.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.aggregate import COLUMNS, REFERENCE_DIR, findings, model_row, paper_reported, paper_rows
from pipeline.cells import grid_cells
from pipeline.figures import filter_cells, filter_grid, intensity_histograms, mask_strip

FIXTURE_SOURCE = "fixture"
BASE_DICE = {"lung": 0.93, "lesion_a": 0.62, "lesion_b": 0.66}
VOLUMES = 9


class _FakeTest:
    """Just enough of a prepared split for the intensity histograms."""

    def __init__(self, rng: np.random.Generator, size: int = 32, count: int = 6):
        self.image = rng.normal(-0.3, 0.6, (count, size, size)).astype(np.float32)
        self.lung = (rng.random((count, size, size)) > 0.6).astype(np.uint8)
        self.lesion = (self.lung * (rng.random((count, size, size)) > 0.8)).astype(np.uint8)


def _history(rng: np.random.Generator, epochs: int) -> pd.DataFrame:
    epoch = np.arange(1, epochs + 1)
    train = 0.9 * np.exp(-epoch / (epochs / 4)) + 0.05 + rng.normal(0, 0.01, epochs)
    val = train + 0.03 + np.abs(rng.normal(0, 0.02, epochs))
    return pd.DataFrame(
        {
            "epoch": epoch,
            "train_loss": train.round(6),
            "val_loss": val.round(6),
            "train_seconds": 1.5,
            "val_seconds": 0.2,
        }
    )


def write_results_fixture(
    root: Path,
    experiments=("lung", "lesion_a", "lesion_b"),
    architectures=("unet", "linknet", "fpn", "pspnet"),
    encoders=("resnet18", "mobilenet_v2"),
    weights=("random", "imagenet"),
    epochs: int = 10,
    seed: int = 0,
    failed: int = 1,
    images: bool = True,
) -> tuple[Path, Path]:
    """Write ``root/results`` and ``root/figures``; the first ``failed`` models are recorded as failed."""
    rng = np.random.default_rng(seed)
    results, figures = root / "results", root / "figures"
    for folder in (results, figures / "masks", figures / "filters"):
        folder.mkdir(parents=True, exist_ok=True)
    cells = grid_cells(list(experiments), list(architectures), list(encoders), list(weights))
    reported = paper_rows(REFERENCE_DIR)
    paper = {key: row["dice"] for key, row in reported.items()}
    strip_inputs = rng.normal(-0.3, 0.5, (3, 32, 32)).astype(np.float32)
    strip_truth = rng.random((3, 32, 32)) > 0.7
    drawn_filters = set(filter_cells(cells))
    rows = []
    for index, cell in enumerate(cells):
        ok = index >= failed
        params = int(rng.integers(4_000_000, 120_000_000))
        train = {
            "id": cell.id,
            "experiment": cell.experiment,
            "architecture": cell.architecture,
            "encoder": cell.encoder,
            "encoder_weights": cell.weights,
            "data_source": FIXTURE_SOURCE,
            "profile": "fixture",
            "status": "ok" if ok else "failed",
            "error": "" if ok else "non-finite loss at epoch 3",
            "params": params,
            "trained_params": params,
            "gflops": round(params / 2e6, 3),
            "train_images_per_s": round(float(rng.uniform(20, 400)), 2),
            "infer_images_per_s": round(float(rng.uniform(60, 1500)), 2),
            "epochs": epochs,
            "best_epoch": int(rng.integers(1, epochs + 1)) if ok else None,
            "device": "fixture: no device",
            "train_seconds": float(epochs * 1.7),
            "seed": index,
            "loss": "dice_paper",
            "size": 512,
            "best_val_loss": 0.1,
            "inputs": "fixture",
        }
        evaluation: dict = {"id": cell.id, "status": train["status"], "error": train["error"]}
        folder = results / cell.id
        folder.mkdir(exist_ok=True)
        if ok:
            dice = float(np.clip(BASE_DICE[cell.experiment] + rng.normal(0, 0.03), 0, 1))
            volumes = pd.DataFrame(
                {
                    "volume": [f"{v}.nii.gz" for v in range(1, VOLUMES + 1)],
                    "slices": 90,
                    "dice": np.clip(dice + rng.normal(0, 0.04, VOLUMES), 0, 1).round(6),
                    "sensitivity": np.clip(dice + rng.normal(0, 0.04, VOLUMES), 0, 1).round(6),
                    "specificity": np.clip(0.995 + rng.normal(0, 0.002, VOLUMES), 0, 1).round(6),
                    "precision": np.clip(dice + rng.normal(0, 0.04, VOLUMES), 0, 1).round(6),
                    "dice_working_size": np.clip(dice + rng.normal(0, 0.04, VOLUMES), 0, 1).round(6),
                }
            )
            scores = {
                name: round(float(volumes[name].mean()), 6)
                for name in ("dice", "sensitivity", "specificity", "precision")
            }
            for prefix in ("slice_", "pooled_"):
                scores.update({f"{prefix}{k}": round(min(1.0, v + 0.01), 6) for k, v in list(scores.items())[:4]})
            evaluation.update(
                scores,
                dice_ci_low=round(scores["dice"] - 0.02, 6),
                dice_ci_high=round(scores["dice"] + 0.02, 6),
                paper_dice=round(100 * min(1.0, scores["dice"] + 0.15), 4),
                paper_sensitivity=round(100 * scores["precision"], 4),
                paper_specificity=99.5,
            )
            _history(rng, epochs).to_csv(folder / "history.csv", index=False)
            volumes.to_csv(folder / "volumes.csv", index=False)
            if images:
                predicted = strip_truth ^ (rng.random(strip_truth.shape) > 0.9)
                mask_strip(strip_inputs, strip_truth, predicted).save(figures / "masks" / f"{cell.id}.png")
                if cell in drawn_filters:
                    import torch

                    generator = torch.Generator().manual_seed(index)
                    weight = torch.randn(64, 1, 7, 7, generator=generator) * 0.2
                    filter_grid(weight).save(figures / "filters" / f"{cell.id}.png")
        row = model_row(train, evaluation, paper)
        rows.append(row)
        record = {**train, **evaluation, **{k: v for k, v in row.items() if v is not None},
                  **paper_reported(cell, reported)}  # fmt: skip
        (folder / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame.to_csv(results / "leaderboard.csv", index=False, float_format="%.6g")
    summary = findings(frame, paper, REFERENCE_DIR)
    (results / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (figures / "intensity.json").write_text(json.dumps(intensity_histograms(_FakeTest(rng))) + "\n")
    slices = {e: [{"volume": f"{v}.nii.gz", "slice": 10 * v} for v in (1, 2, 3)] for e in experiments}
    (figures / "slices.json").write_text(json.dumps(slices, indent=2) + "\n")
    return results, figures
