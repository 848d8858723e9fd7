"""Scoring what comes from outside the grid: a folder of predicted masks, a segmentation-models-pytorch folder or
an ONNX model, by the grid's own scoring path (pipeline.evaluation.evaluate.score_volumes).

- Predicted masks are scored as given, on each scan's grid (pipeline.data.predictions checks them).
- A model is run by the benchmark itself. Its preprocessing is its ``preprocessing.json`` where it has one,
  else the defaults the submission recorded (the benchmark's: ``preprocess`` params at submission, the
  ONNX graph's input size where it fixes one). When that preprocessing is the prepared test data's, the model
  sees the very slices the grid's models see (so a copy of a grid model scores exactly as it); otherwise each
  scan is normalised and resized to the model's own working size from its Hounsfield units, as ``predict``
  does. An ONNX graph under the native contract (pipeline.model.onnx_network) is given each scan's Hounsfield
  units at the scan's own size and its probabilities are only thresholded: its submitter's preprocessing is
  what is scored. Scoring runs on one CPU thread (or the GPU), as evaluation does, so that a result never depends on
  the machine's thread count; the timing of inference then uses all threads, as the speed stage does.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.core.config import EvaluateParams, SpeedParams
from pipeline.core.errors import DataError, PipelineError
from pipeline.core.experiments import experiment as experiment_of
from pipeline.core.outputs import read_json
from pipeline.data import predictions
from pipeline.data.prepared import load_native
from pipeline.evaluation.evaluate import evaluate_masks, evaluate_probabilities
from pipeline.evaluation.heldout import HeldOutSet
from pipeline.model import checkpoints
from pipeline.model.device import device_name, inference_seconds, median_seconds
from pipeline.model.folder import (
    CONFIG,
    NOT_A_MODEL,
    PICKLE_SUFFIXES,
    PREPROCESSING,
    WEIGHTS,
    pickle_refusal,
    preprocessing_record,
)
from pipeline.model.onnx_network import CONTRACTS, ONNX_SUFFIX, OnnxNetwork

PREPROCESS_KEYS = ("size", "hu_offset", "hu_scale")


@dataclass
class Scored:
    """One entry's scores: the evaluation record (as evaluate writes it), per-volume rows, its predictions on
    each scan's grid (for the viewer), and what is known of the model (kind, size, speed)."""

    record: dict
    rows: list[dict]
    native: dict[str, np.ndarray]
    about: dict = field(default_factory=dict)


def geometry(test: HeldOutSet) -> dict[str, predictions.Geometry]:
    return {name: predictions.Geometry(test.shapes[name], test.affines[name]) for name in test.volume_rows}


def read_predictions(files: dict[str, Path], test: HeldOutSet) -> dict[str, np.ndarray]:
    """test volume -> its checked mask (slices first), from ``predictions.match_volumes``."""
    shapes = geometry(test)
    return {name: predictions.read_mask(files[name], shapes[name]) for name in test.volume_rows}


def score_masks(masks: dict[str, np.ndarray], experiment: str, test: HeldOutSet, params: EvaluateParams) -> Scored:
    record, rows = evaluate_masks(masks, experiment, test, params)
    return Scored(record, rows, masks, {"kind": "predictions"})


def model_kind(path: Path) -> str:
    """ "onnx" or "smp" for what ``--model`` names; a pickle is refused, never opened."""
    path = Path(path)
    if path.is_file() and path.name.endswith(ONNX_SUFFIX):
        return "onnx"
    if path.is_dir():
        if (path / WEIGHTS).is_file() and (path / CONFIG).is_file():
            return "smp"
        pickled = sorted(p for p in path.glob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise pickle_refusal(pickled[0])
        missing = CONFIG if not (path / CONFIG).is_file() else WEIGHTS
        raise DataError(path, f"is not a segmentation-models-pytorch folder: it lacks {missing}")
    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        raise pickle_refusal(path)
    if path.exists():
        raise DataError(path, f"is neither a model folder (config.json + {WEIGHTS}) nor an ONNX file (.onnx)")
    raise DataError(path, "does not exist")


@dataclass
class Network:
    """A loaded outside model: the torch module or ONNX graph, the preprocessing it is run with, what it is."""

    model: object
    preprocessing: dict
    about: dict


def default_preprocessing(experiment: str, preprocess: dict) -> dict:
    """What a model without preprocessing.json is run with: the benchmark's preprocessing (recorded in the
    submission, so that the score never changes with the profile)."""
    return preprocessing_record(experiment, preprocess)


def native_contract(experiment: str) -> dict:
    """What submission.json records of a graph under the native contract: no preprocessing of the benchmark's."""
    lungs = " and the lung mask (0 or 1) as a second input of that shape"
    lungs = lungs if experiment_of(experiment).inside_lungs else ""
    return {
        "experiment": experiment, "contract": "native",
        "input": f"each test scan's slices at its own size in Hounsfield units, (N, 1, H, W) float32{lungs}; "
                 "slice k is volume[:, :, k] of the NIfTI array as nibabel reads it (as stored, not reoriented)",
        "output": "probabilities in [0, 1] of that shape, thresholded by the benchmark (>= evaluate.threshold); "
                  "no resize, no sigmoid",
    }  # fmt: skip


def contract_of(preprocessing: dict | None) -> str:
    """The ONNX contract a recorded preprocessing names ("benchmark" where it names none, as before it existed)."""
    contract = (preprocessing or {}).get("contract", "benchmark")
    if contract not in CONTRACTS:
        raise PipelineError(f"unknown ONNX contract {contract!r}; expected one of {', '.join(CONTRACTS)}")
    return contract


def load_network(path: Path, kind: str, experiment: str, defaults: dict, device: torch.device) -> Network:
    """The model at ``path`` ready to segment, checked: an smp folder's weights match its config (all there,
    finite, the right shapes), an ONNX graph takes and gives what its contract says (``defaults['contract']``)."""
    path = Path(path)
    if kind == "onnx" and contract_of(defaults) == "native":
        network = OnnxNetwork(path, "native", inputs=2 if experiment_of(experiment).inside_lungs else 1)
        network.check(0)
        return Network(network, native_contract(experiment), {
            "kind": "onnx", "contract": "native", "params": network.parameters(),
            "params_counted": "values in the ONNX graph's weights"})  # fmt: skip
    if kind == "onnx":
        network = OnnxNetwork(path)
        size = network.working_size(defaults["size"])
        if size % 32 or not 32 <= size <= 2048:
            raise DataError(path, f"takes {size} x {size} slices; the benchmark's working sizes are multiples of 32")
        preprocessing = {**defaults, "size": size}
        network.check(size)
        return Network(network, preprocessing, {"kind": "onnx", "contract": "benchmark", "params": network.parameters(),
                                                "params_counted": "values in the ONNX graph's weights"})  # fmt: skip
    model, preprocessing = checkpoints.load(path, device, default_preprocessing=defaults)
    if preprocessing["experiment"] != experiment:
        raise DataError(path / PREPROCESSING, f"is for {preprocessing['experiment']} models; the submission is "
                                              f"for {experiment}")  # fmt: skip
    from pipeline.model.factory import count_parameters, forward_flops

    config = read_json(path / CONFIG, NOT_A_MODEL)
    about = {
        "kind": "smp", "params": count_parameters(model), "params_counted": "parameters of the torch module",
        "gflops": forward_flops(model, preprocessing["size"]) / 1e9,
        "architecture": str(config.get("_model_class", "")).lower(), "encoder": str(config.get("encoder_name", "")),
    }  # fmt: skip
    return Network(model, preprocessing, about)


def _probabilities(model, inputs: np.ndarray) -> np.ndarray:
    """A submitted network's probabilities; non-finite outputs are refused, never scored as empty masks (the
    ONNX path refuses them too: weights multiplied by 1e30 load and compute infinities)."""
    if isinstance(model, OnnxNetwork):
        return model.probabilities(inputs)
    from pipeline.model.inference import probabilities

    probs = probabilities(model, inputs)
    if not np.isfinite(probs).all():
        raise PipelineError("the submitted model computes non-finite values (NaN or infinity) on the test "
                            "slices: its weights do not make a working network")  # fmt: skip
    return probs


def _native_masks(network: Network, experiment: str, test: HeldOutSet, threshold: float) -> dict[str, np.ndarray]:
    """Each scan segmented from its Hounsfield units at the model's own working size (``predict``'s path)."""
    from pipeline.model.inference import model_inputs, to_native

    masks = {}
    for name in test.volume_rows:
        native = load_native(test.volume_dirs[name], test.prepared_dir)
        lung = np.asarray(native.lung) if experiment_of(experiment).inside_lungs else None
        inputs = model_inputs(experiment, np.asarray(native.image, dtype=np.float32), lung, network.preprocessing)
        height, width = native.image.shape[1:]
        masks[name] = to_native(_probabilities(network.model, inputs), height, width, threshold).astype(bool)
    return masks


def _contract_masks(network: Network, experiment: str, test: HeldOutSet, threshold: float) -> dict[str, np.ndarray]:
    """Each scan's Hounsfield units given to a native-contract graph at the scan's own size; its probabilities
    thresholded on the scan's grid, nothing else done."""
    inside_lungs = experiment_of(experiment).inside_lungs
    masks = {}
    for name in test.volume_rows:
        native = load_native(test.volume_dirs[name], test.prepared_dir)
        lung = np.asarray(native.lung, dtype=np.float32) if inside_lungs else None
        probs = network.model.native_probabilities(np.asarray(native.image, dtype=np.float32), lung)
        masks[name] = probs >= threshold
    return masks


def time_inference(network: Network, speed: SpeedParams, device: torch.device, test: HeldOutSet) -> dict:
    """Images per second of inference, as the speed stage times the grid's networks (median of repeats after
    warm-up, random slices at the working size, a batch of ``speed.batch_size``); a native-contract graph on
    slices of the first test scan's size, the size it is given when scored."""
    native = network.preprocessing.get("contract") == "native"
    height, width = test.shapes[next(iter(test.volume_rows))][:2] if native else (network.preprocessing["size"],) * 2
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(speed.batch_size, 1, height, width, generator=generator)
    if isinstance(network.model, OnnxNetwork):
        batch = images.numpy()

        def infer() -> None:
            if native:
                network.model.native_probabilities(batch[:, 0] * 500, np.ones_like(batch[:, 0]))
            else:
                network.model.logits(batch)

        timing_device = torch.device("cpu")
        seconds = median_seconds(infer, timing_device, speed.warmup, speed.repeats)
    else:
        timing_device = device
        seconds = inference_seconds(network.model, images.to(device), device, speed.warmup, speed.repeats)
    shape = {"speed_slice": f"{height} x {width}"} if native else {}
    return {"infer_images_per_s": speed.batch_size / seconds, "speed_device": device_name(timing_device), **shape}


def score_network(network: Network, experiment: str, test: HeldOutSet, params: EvaluateParams,
                  prepared_preprocess: dict) -> Scored:  # fmt: skip
    """Scores of a loaded model, on one thread (see the module's docstring)."""
    if network.preprocessing.get("contract") == "native":
        native = _contract_masks(network, experiment, test, params.threshold)
        record, rows = evaluate_masks(native, experiment, test, params)
        seen = "each test scan's slices in Hounsfield units at the scan's own size"
        return Scored(record, rows, native, {**network.about, "input": seen})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        same = all(float(network.preprocessing[k]) == float(prepared_preprocess[k]) for k in PREPROCESS_KEYS)
        if same:  # the prepared slices are exactly what this model expects: the grid's path
            probs = _probabilities(network.model, test.experiment(experiment)[0])
            record, rows = evaluate_probabilities(probs, experiment, test, params)
            from pipeline.model.inference import to_native

            native = {name: to_native(probs[index], *test.shapes[name][:2], params.threshold).astype(bool)
                      for name, index in test.volume_rows.items()}  # fmt: skip
        else:
            native = _native_masks(network, experiment, test, params.threshold)
            record, rows = evaluate_masks(native, experiment, test, params)
    finally:
        torch.set_num_threads(threads)
    seen = "the prepared test slices" if same else "each scan resized to the model's working size"
    about = {**network.about, "preprocessing": {k: network.preprocessing[k] for k in PREPROCESS_KEYS}, "input": seen}
    return Scored(record, rows, native, about)


def score_model(network: Network, experiment: str, test: HeldOutSet, params, prepared_preprocess: dict,
                device: torch.device) -> Scored:  # fmt: skip
    """A loaded model scored (``score_network``) and its inference timed (``time_inference``): what submit's
    dry run and the score stage both report."""
    scored = score_network(network, experiment, test, params.evaluate, prepared_preprocess)
    scored.about.update(time_inference(network, params.speed, device, test))
    return scored
