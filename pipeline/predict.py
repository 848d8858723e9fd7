"""Segment a CT volume with a trained model of the grid: NIfTI or a DICOM series in, binary NIfTI mask out.

    python -m pipeline.predict --model lung-unet-resnet18-random scan.nii.gz lungs.nii.gz
    python -m pipeline.predict --model lung-unet-resnet18-random dicom/series/ lungs.nii.gz --dicom-seg lungs.dcm
    python -m pipeline.predict --model path/to/lesion_b-unet-resnet18-random/ scan.nii.gz lesions.nii.gz \\
        --lung-mask lungs.nii.gz

``--model`` takes a model id (its folder is models/<id>/: ``dvc pull train@<id>`` fetches it) or a model
folder (``config.json``, ``model.safetensors``, ``preprocessing.json``: a ``dvc get`` of models/<id>, or a
hub export of ``python -m pipeline.site.publish --hub``). A pickled ``.pt`` checkpoint is refused, never opened
(pipeline.model.folder). Any in-plane size and slice count; slices are the last array axis as nibabel returns
them, in Hounsfield units; a DICOM series folder is read from its headers (pipeline.data.dicom). The scan is
brought to the orientation of the model's training data and the mask back (pipeline.data.orientation); the
model's own preprocessing is applied (pipeline.model.inference) and the mask is written with the input's affine
and header (a DICOM series': the affine its headers give; ``--dicom-seg`` also writes a DICOM SEG object).
A lesion_b model sees the image only inside the lungs: give the lung mask (``--lung-mask``) or a lung model to
compute it (``--lung-model``). The output is checked before the work starts: it must be a new
``.nii``/``.nii.gz`` name in an existing folder, never the input itself.

From Python (a notebook):

    from pipeline.predict import load_model
    lesions = load_model("lesion_a-unet-resnet18-random").segment(volume_hu)   # (H, W, S) -> (H, W, S) uint8
    lesions = load_model("lesion_a-unet-resnet18-random").segment_scan(volume_hu, affine)  # any orientation
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.experiments import experiment
from pipeline.core.outputs import written_atomically
from pipeline.core.paths import MODELS_DIR
from pipeline.data import dicom, orientation, rawdata, transforms
from pipeline.data.orientation import reorientation
from pipeline.model import checkpoints
from pipeline.model.device import select_device
from pipeline.model.folder import resolve
from pipeline.model.inference import model_inputs, probabilities, to_native

NIFTI_SUFFIXES = (".nii", ".nii.gz")


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
        return experiment(self.experiment).inside_lungs

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

    @property
    def orientation(self) -> str | None:
        """The axis codes of the data the model was trained on (None: a folder that does not record them)."""
        return self.preprocess.get("orientation")

    def segment_scan(self, volume: np.ndarray, affine: np.ndarray, lung_mask: np.ndarray | None = None,
                     progress: bool = False) -> np.ndarray:  # fmt: skip
        """``segment`` of a scan with its affine: the arrays are brought to the model's orientation first (exact
        axis swaps and flips) and the mask back to the scan's own, so a scan stored LPS or RPS gets the mask the
        model gives the same scan stored as its training data was."""
        turn = reorientation(affine, np.shape(volume), self.orientation)
        lung = None if lung_mask is None else turn.to_model(lung_mask)
        return turn.to_scan(self.segment(turn.to_model(volume), lung, progress))


def load_model(model: str | Path, device: str = "auto", threshold: float = 0.5,
               models_dir: Path = MODELS_DIR) -> Segmenter:  # fmt: skip
    """A model by id (``lung-unet-resnet18-random``) or model folder, ready to segment; never a pickle."""
    check_threshold(threshold)
    folder = resolve(model, models_dir)
    network, preprocessing = checkpoints.load(folder, select_device(device, "--device"))
    return Segmenter(network, preprocessing["experiment"], preprocessing, str(model), threshold)


def check_threshold(threshold: float) -> None:
    if not 0 < threshold < 1:  # also refuses NaN
        raise PipelineError(f"--threshold {threshold}: must lie strictly between 0 and 1")


def check_output(output: Path, inputs: list[Path], kind: str = "NIfTI", suffixes: tuple[str, ...] = NIFTI_SUFFIXES,
                 ) -> None:  # fmt: skip
    """Refuse, before any work, an input that cannot be read as a file, and an output that cannot be written or
    that would overwrite an input."""
    if output.is_dir():
        raise PipelineError(f"{output}: is a folder; give a file name for the mask")
    if not output.name.endswith(suffixes):
        raise PipelineError(f"{output}: the mask is written as {kind}; give a name ending in {' or '.join(suffixes)}")
    if not output.parent.is_dir():
        raise PipelineError(f"{output}: its folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise PipelineError(f"{output}: its folder {output.parent} is not writable")
    for source in inputs:
        rawdata.check_regular(source)  # a missing input, a link loop, a FIFO: refused before any work
        if output.resolve() == source.resolve() or (output.exists() and os.path.samefile(output, source)):
            raise PipelineError(f"{output}: is an input of this command ({source}); the mask would destroy it")


def read_scan(path: Path) -> tuple[np.ndarray, nib.Nifti1Image, dicom.Series | None]:
    """A CT volume in HU, the image whose geometry the mask takes, and the DICOM series when ``path`` is a
    series folder (None for a NIfTI file)."""
    if dicom.is_series(path):
        series = dicom.read_series(path)
        volume = np.asarray(series.image.dataobj, dtype=np.float32)
        rawdata.check_hounsfield(volume, path)
        return volume, series.image, series
    volume, _ = rawdata.read_image(path)
    rawdata.voxel_size(path)  # a scan whose header gives no real voxel size is not a CT to trust
    return volume, nib.load(path), None


def save_mask(mask: np.ndarray, like: nib.Nifti1Image, path: Path) -> None:
    """Write a uint8 mask with the affine and header of ``like``, atomically (no half-written file)."""
    header = like.header.copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1, 0)
    image = nib.Nifti1Image(mask.astype(np.uint8), like.affine, header)
    suffix = ".nii.gz" if path.name.endswith(".gz") else ".nii"
    try:
        with written_atomically(path, suffix) as partial:
            nib.save(image, partial)
    except OSError as error:
        raise PipelineError(f"{path}: cannot be written ({error.strerror or error})") from None


def main() -> None:
    parser = ArgumentParser(description="Segment a CT volume (NIfTI) with a trained model.")
    parser.add_argument("input", type=Path, help="CT volume: a NIfTI file (Hounsfield units) or a DICOM series folder")
    parser.add_argument("output", type=Path, help="where to write the binary mask (NIfTI)")
    parser.add_argument("--model", required=True, help="a model id (e.g. lung-unet-resnet18-random) or model folder")
    parser.add_argument("--lung-mask", type=Path, help="lung mask of the scan (lesion_b models need one)")
    parser.add_argument("--lung-model", help="or a lung model to compute that mask")
    parser.add_argument("--dicom-seg", type=Path, help="also write the mask as a DICOM SEG object (DICOM input)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()
    started = time.perf_counter()
    check_threshold(args.threshold)
    inputs = [path for path in (args.input, args.lung_mask) if path is not None and not dicom.is_series(path)]
    check_output(args.output, inputs)
    if args.dicom_seg is not None:
        check_output(args.dicom_seg, inputs, "DICOM SEG", (".dcm",))
        if not dicom.is_series(args.input):
            raise PipelineError(f"--dicom-seg {args.dicom_seg}: a DICOM SEG refers to a DICOM series; "
                                f"{args.input} is a NIfTI file")  # fmt: skip
    segmenter = load_model(args.model, args.device, args.threshold)
    volume, like, series = read_scan(args.input)
    lung = None
    if segmenter.needs_lung_mask:
        if args.lung_mask is not None:
            lung = rawdata.read_labels(args.lung_mask, rawdata.LUNG_LABELS)
        elif args.lung_model is not None:
            lung_segmenter = load_model(args.lung_model, args.device, args.threshold)
            if experiment(lung_segmenter.experiment).target != "lung":
                raise PipelineError(f"--lung-model {args.lung_model} is a {lung_segmenter.experiment} model")
            lung = lung_segmenter.segment_scan(volume, like.affine, progress=True)
        else:
            raise PipelineError(
                f"{args.model} is a lesion_b model: it needs the scan's lung mask; pass --lung-mask LUNG.nii.gz "
                "or --lung-model <a lung model id>"
            )
        if lung.shape != volume.shape:
            raise DataError(args.lung_mask or args.lung_model, f"has shape {lung.shape}, the scan {volume.shape}")
    mask = segmenter.segment_scan(volume, like.affine, lung, progress=True)
    save_mask(mask, like, args.output)
    if args.dicom_seg is not None:
        dicom.write_segmentation(mask, series, segmenter.name, experiment(segmenter.experiment).target,
                                 args.dicom_seg)  # fmt: skip
    millilitres = float(mask.sum()) * float(np.prod(like.header.get_zooms()[:3])) / 1000
    turned = orientation.codes(like.affine)
    print(
        f"predict: {args.input} {volume.shape} ({turned}"
        + (f", run as {segmenter.orientation}" if segmenter.orientation and segmenter.orientation != turned else "")
        + f") -> {args.output}: {int(mask.sum())} foreground voxels ({mask.mean():.1%}, {millilitres:.1f} ml) "
        f"in {time.perf_counter() - started:.1f} s"
        + ("" if args.dicom_seg is None else f"; DICOM SEG {args.dicom_seg}")
    )


if __name__ == "__main__":
    run_stage(main)
