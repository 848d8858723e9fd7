"""Trained models on disk, in segmentation-models-pytorch's own format, and the one safe way to load them.

A model folder (pipeline.model.folder: ``config.json``, ``model.safetensors``, ``preprocessing.json``) is
written by ``save`` at the end of training and read by ``load``.

``load`` is the only loader of trained models in the project (predict, evaluate, figures, the Python API). It
never unpickles: a ``.pt`` file, the format of this project's first releases and of most PyTorch code, can
run any code it carries when ``torch.load`` opens it, so it is refused with a line that says how to convert a
trusted one (``python -m pipeline.model.convert``, which reads it with ``weights_only=True``).
"""

import json
from pathlib import Path

import torch

from pipeline.core.cells import Cell
from pipeline.core.errors import DataError
from pipeline.core.outputs import read_json
from pipeline.model.folder import (
    CONFIG,
    NOT_A_MODEL,
    PREPROCESSING,
    WEIGHTS,
    file_digests,
    preprocessing_record,
    read_preprocessing,
)


def save(state_dict: dict, cell: Cell, preprocess: dict, folder: Path) -> dict:
    """Write a trained model's folder (smp's ``save_pretrained`` plus preprocessing.json); returns the
    checkpoint record (file, bytes, sha256, md5) for train.json."""
    import segmentation_models_pytorch as smp

    # A fresh 1-channel model, so that config.json says what the weights are (an ImageNet model was built
    # with 3 input channels and reduced to 1) and names no pretrained weights to fetch.
    model = smp.create_model(
        cell.architecture, encoder_name=cell.encoder, encoder_weights=None, in_channels=1, classes=1
    )
    model.load_state_dict(state_dict)
    folder = Path(folder)
    model.save_pretrained(folder)
    (folder / WEIGHTS).chmod(0o644)  # written private by the hub client; it is meant to be published
    # smp also writes a generic model card; ours, with the test metrics, is made by `publish --hub`.
    (folder / "README.md").unlink(missing_ok=True)
    record = preprocessing_record(cell.experiment, preprocess)
    (folder / PREPROCESSING).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return file_digests(folder / WEIGHTS)


def build_from_config(folder: Path) -> torch.nn.Module:
    """The network config.json describes, with no weights (never fetched: encoder_weights is forced off)."""
    import segmentation_models_pytorch as smp

    path = Path(folder) / CONFIG
    config = read_json(path, NOT_A_MODEL)
    classes = {cls.__name__: cls for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()}
    name = config.get("_model_class")
    if name not in classes:
        raise DataError(path, f"names the model class {name!r}; valid: {', '.join(sorted(classes))}")
    kwargs = {key: value for key, value in config.items() if not key.startswith("_")}
    check_config(path, classes[name], kwargs)
    if kwargs.get("in_channels", 3) != 1 or kwargs.get("classes", 1) != 1:
        raise DataError(path, "describes a model without 1 input channel and 1 class; this benchmark's take a CT slice")
    kwargs["encoder_weights"] = None
    try:
        return classes[name](**kwargs)
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        raise DataError(path, f"does not describe a buildable {name} ({str(error).splitlines()[0]})") from None


def check_config(path: Path, model_class, kwargs: dict) -> None:
    """Refuse a config.json that could steer more than the network's shape (a submitted folder is untrusted):
    keys the architecture does not take (they would reach the encoder as unchecked options), and any encoder
    outside smp's registry. ``tu-`` names are timm encoders by plain model name only: a source prefix
    (``tu-hf-hub:...``, ``tu-local-dir:/etc``) would make the build fetch from a model hub or open local files."""
    import inspect

    import segmentation_models_pytorch as smp

    taken = [key for key in inspect.signature(model_class.__init__).parameters if key not in ("self", "kwargs")]
    unknown = sorted(set(kwargs) - set(taken))
    if unknown:
        raise DataError(path, f"has the key {unknown[0]!r}, which {model_class.__name__} does not take; valid: "
                              f"{', '.join(taken)}")  # fmt: skip
    encoder = kwargs.get("encoder_name", "resnet34")
    if not isinstance(encoder, str):
        raise DataError(path, f"gives encoder_name as {type(encoder).__name__}; expected an encoder's name")
    if encoder in smp.encoders.get_encoder_names():
        return
    if encoder.startswith("tu-") and ":" not in encoder and "/" not in encoder:
        import timm

        if timm.is_model(encoder[3:]):
            return
    raise DataError(
        path,
        f"names the encoder {encoder[:80]!r}, which is not in segmentation-models-pytorch's "
        "registry (nor a timm model by plain name); hub and local sources are not accepted",
    )


def check_weights(path: Path, model: torch.nn.Module) -> None:
    """Refuse weights that would load without an error and compute nonsense: a tensor whose kind differs from
    the model's (integers, booleans or complex numbers where the model holds real numbers, or the reverse) or
    real numbers that are not all finite. The rule for what is accepted: a floating tensor of any precision
    (float16, bfloat16, float32, float64) is cast to the model's own (float32), as torch copies it."""
    from safetensors import safe_open

    state = model.state_dict()
    expected = {name: tensor.dtype for name, tensor in state.items()}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        names = handle.keys()  # a safetensors handle is not a mapping: its keys() is a list
        for name in names:
            want = expected.get(name)
            if want is None:
                continue  # an unknown name: load_model reports it below
            shape = tuple(handle.get_slice(name).get_shape())
            if shape != tuple(state[name].shape):
                raise DataError(path, f"holds {name} with shape {shape}, where the model of {CONFIG} has "
                                      f"{tuple(state[name].shape)}")  # fmt: skip
            tensor = handle.get_tensor(name)
            if tensor.is_complex() or tensor.dtype.is_floating_point != want.is_floating_point:
                raise DataError(path, f"holds {name} as {tensor.dtype}, where the model has {want}; its weights "
                                      "are not a trained model's")  # fmt: skip
            if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
                raise DataError(path, f"holds non-finite values (NaN or infinity) in {name}")


def load(folder: Path, device: torch.device | str = "cpu", default_preprocessing: dict | None = None,
         ) -> tuple[torch.nn.Module, dict]:  # fmt: skip
    """A trained model (eval mode, on ``device``) and its preprocessing record, from a model folder; a folder
    without preprocessing.json (an outside smp model) takes ``default_preprocessing`` where one is given."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    folder = Path(folder)
    if default_preprocessing is not None and not (folder / PREPROCESSING).exists():
        preprocessing = default_preprocessing
    else:
        preprocessing = read_preprocessing(folder)
    model = build_from_config(folder)
    path = folder / WEIGHTS
    try:
        check_weights(path, model)
        # load_model, not load_file: it knows the tensors save_pretrained stored once for two names.
        missing, unexpected = load_model(model, path, strict=False, device="cpu")
    except FileNotFoundError:
        raise DataError(path, "is missing") from None
    except RuntimeError as error:  # a tensor of the wrong shape
        detail = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error))
        raise DataError(path, f"does not match the model of {CONFIG}: {detail[:200]}") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise DataError(path, f"is not a readable safetensors file ({str(error).splitlines()[0]})") from None
    if missing or unexpected:
        problem = (f"lacks {len(missing)} tensors (e.g. {sorted(missing)[0]})" if missing else
                   f"has {len(unexpected)} unknown tensors (e.g. {sorted(unexpected)[0]})")  # fmt: skip
        raise DataError(path, f"does not match the model of {CONFIG}: it {problem}")
    return model.to(device).eval(), preprocessing
