"""Segment a CT volume with a trained model of the grid: NIfTI in, binary NIfTI mask out.

    python -m pipeline.predict --model lung-unet-resnet18-random scan.nii.gz lungs.nii.gz
    python -m pipeline.predict --model models/lesion_b-unet-resnet18-random/model.pt scan.nii.gz lesions.nii.gz \\
        --lung-mask lungs.nii.gz

``--model`` takes a model id (its checkpoint is models/<id>/model.pt: ``dvc pull train@<id>`` fetches it) or
a checkpoint path. Any in-plane size and slice count; slices are the last array axis as nibabel returns them,
in Hounsfield units. The model's own preprocessing is applied (pipeline.inference) and the mask is written
with the input's affine and header. A lesion_b model sees the image only inside the lungs: give the lung mask
(``--lung-mask``) or a lung model to compute it (``--lung-model``).

From Python (a notebook):

    from pipeline.predict import load_model
    lesions = load_model("lesion_a-unet-resnet18-random").segment(volume_hu)   # (H, W, S) -> (H, W, S) uint8
"""

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from pipeline import rawdata, transforms
from pipeline.cells import parse_cell_id
from pipeline.errors import DataError, PipelineError, run_stage
from pipeline.inference import load_checkpoint, model_inputs, probabilities, to_native
from pipeline.train import CHECKPOINT, MODELS_DIR, select_device


@dataclass
class Segmenter:
    """A loaded model with what it needs to segment a scan like the ones it was evaluated on."""

    model: torch.nn.Module
    experiment: str
    preprocess: dict
    name: str
    threshold: float = 0.5

    @property
    def needs_lung_mask(self) -> bool:
        return self.experiment == "lesion_b"

    def segment(self, volume: np.ndarray, lung_mask: np.ndarray | None = None, progress: bool = False) -> np.ndarray:
        """A binary uint8 mask of the same shape as ``volume`` (H, W, slices), Hounsfield units in."""
        volume = np.asarray(volume)
        if volume.ndim != 3:
            raise PipelineError(f"expected a 3-D volume (H, W, slices), got shape {volume.shape}")
        if self.needs_lung_mask and lung_mask is None:
            raise PipelineError(f"{self.name} is a lesion_b model: it needs the scan's lung mask")
        if lung_mask is not None and lung_mask.shape != volume.shape:
            raise PipelineError(f"the lung mask has shape {lung_mask.shape}, the scan {volume.shape}")
        lung = transforms.slices_first(lung_mask) if lung_mask is not None else None
        inputs = model_inputs(self.experiment, transforms.slices_first(volume), lung, self.preprocess)
        probs = probabilities(self.model, inputs, progress=progress)
        mask = to_native(probs, volume.shape[0], volume.shape[1], self.threshold)
        return np.moveaxis(mask, 0, -1)  # a view: (H, W, slices) as the scan, without copying


def resolve_checkpoint(model: str | Path, models_dir: Path = MODELS_DIR) -> Path:
    """A model id or a checkpoint path -> the checkpoint's path, with a clear error when it is absent."""
    path = Path(model)
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise PipelineError(f"{path}: no such checkpoint")
        return path
    try:
        cell = parse_cell_id(str(model))
    except ValueError as error:
        raise PipelineError(f"--model: {error}") from None
    path = models_dir / cell.id / CHECKPOINT
    if not path.is_file():
        raise PipelineError(f"{path}: not here; fetch it with `dvc pull train@{cell.id}` (or train it)")
    return path


def load_model(model: str | Path, device: str = "auto", threshold: float = 0.5,
               models_dir: Path = MODELS_DIR) -> Segmenter:  # fmt: skip
    """A model of the grid by id (``lung-unet-resnet18-random``) or checkpoint path, ready to segment."""
    path = resolve_checkpoint(model, models_dir)
    network, checkpoint = load_checkpoint(path, select_device(device))
    experiment = checkpoint["cell"]["experiment"]
    return Segmenter(network, experiment, checkpoint["preprocess"], str(model), threshold)


def save_mask(mask: np.ndarray, like: nib.Nifti1Image, path: Path) -> None:
    """Write a uint8 mask with the affine and header of ``like``, atomically (no half-written file)."""
    header = like.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1, 0)
    image = nib.Nifti1Image(mask.astype(np.uint8), like.affine, header)
    partial = path.with_name(f".{path.name}.partial{''.join(path.suffixes)}")
    nib.save(image, partial)
    os.replace(partial, path)


def main() -> None:
    parser = argparse.ArgumentParser(description="Segment a CT volume (NIfTI) with a trained model.")
    parser.add_argument("input", type=Path, help="CT volume, NIfTI, Hounsfield units")
    parser.add_argument("output", type=Path, help="where to write the binary mask (NIfTI)")
    parser.add_argument("--model", required=True, help="a model id (e.g. lung-unet-resnet18-random) or a .pt path")
    parser.add_argument("--lung-mask", type=Path, help="lung mask of the scan (lesion_b models need one)")
    parser.add_argument("--lung-model", help="or a lung model to compute that mask")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()
    started = time.perf_counter()
    segmenter = load_model(args.model, args.device, args.threshold)
    volume, _ = rawdata.read_image(args.input)
    like = nib.load(args.input)
    lung = None
    if segmenter.needs_lung_mask:
        if args.lung_mask is not None:
            lung = rawdata.read_labels(args.lung_mask, rawdata.LUNG_LABELS)
        elif args.lung_model is not None:
            lung_segmenter = load_model(args.lung_model, args.device, args.threshold)
            if lung_segmenter.experiment != "lung":
                raise PipelineError(f"--lung-model {args.lung_model} is a {lung_segmenter.experiment} model")
            lung = lung_segmenter.segment(volume, progress=True)
        else:
            raise PipelineError(
                f"{args.model} is a lesion_b model: it needs the scan's lung mask; pass --lung-mask LUNG.nii.gz "
                "or --lung-model <a lung model id>"
            )
        if lung.shape != volume.shape:
            raise DataError(args.lung_mask or args.lung_model, f"has shape {lung.shape}, the scan {volume.shape}")
    mask = segmenter.segment(volume, lung, progress=True)
    save_mask(mask, like, args.output)
    print(
        f"predict: {args.input} {volume.shape} -> {args.output}: {int(mask.sum())} foreground voxels "
        f"({mask.mean():.1%}) in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    run_stage(main)
