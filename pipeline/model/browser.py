"""The browser build of a model: one ONNX graph that does to a slice everything ``pipeline.predict`` does, and
reads its weights from the published ``model.safetensors`` itself.

What the graph computes, from a slice as the NIfTI file stores it (``slices``: N x rows x columns, x fastest,
float32 Hounsfield units) to the mask in the same layout (``mask``: uint8 0/1): the slice as predict sees it
(the transpose: nibabel's first axis is the file's fastest), ``(HU + hu_offset) / hu_scale``, antialiased
bilinear resize to the working size (as two matrix products, which every onnxruntime-web backend runs, WebGPU
included), the network, sigmoid, bilinear resize back, threshold. A lesion_b model takes
a second input (``lungs``, the same layout): the binary lung mask resized as preprocessing resizes masks
(coverage >= 0.5) multiplies the normalised slice. These are the operations of pipeline.model.inference and
pipeline.data.transforms, traced by torch's ONNX exporter (opset 18), and tests hold the antialiased resize
against torch's own and the graph's masks against predict's.

No second copy of the weights: every weight of the graph is ONNX external data at its byte range in
``model.safetensors`` (safetensors stores each tensor's little-endian bytes contiguously after a JSON header).
Models whose files have the same header (the same architecture, encoder and tensor layout) share one graph:
onnxruntime-web is given the graph and the model's own weights file (``externalData``). The exporter's graph
optimiser is off: it would fold batch normalisation into the convolutions, and the folded weights are in no file.
"""

import hashlib
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.export import Dim

from pipeline.core.errors import DataError
from pipeline.core.experiments import experiment
from pipeline.model import checkpoints
from pipeline.model.folder import WEIGHTS, read_preprocessing

OPSET = 18  # what torch's dynamo exporter writes; onnxruntime-web runs it
INPUT, LUNGS, OUTPUT = "slices", "lungs", "mask"
THRESHOLD = 0.5  # the benchmark's (evaluate.threshold) and predict's default


def _antialias_weights(positions: torch.Tensor, size: int) -> torch.Tensor:
    """(size, len(positions)) weights of torch's antialiased bilinear resize along one axis (align_corners=False):
    output pixel i is centred at (i + 0.5) * scale of the input, and input pixel j weighs the triangle
    1 - |j + 0.5 - centre| / support, support = max(scale, 1) (a filter as wide as the shrink; plain linear
    interpolation when growing), the weights of each output pixel summing to 1, as ATen's upsample kernel computes
    them. ``positions`` is arange(input size), so that an exported graph keeps the input size free."""
    scale = (positions[-1] + 1) / size
    support = torch.clamp(scale, min=1.0)
    centres = (torch.arange(size, dtype=positions.dtype) + 0.5) * scale
    weights = torch.clamp(1 - (positions[None, :] + 0.5 - centres[:, None]).abs() / support, min=0)
    return weights / weights.sum(dim=1, keepdim=True)


def antialiased_resize(stack: torch.Tensor, size: int) -> torch.Tensor:
    """``F.interpolate(stack, (size, size), mode="bilinear", antialias=True, align_corners=False)`` of (N, 1, H, W),
    written as two matrix products: onnxruntime-web's WebGPU kernels have no antialiased Resize, and every
    backend has MatMul. A test holds it against torch's own."""
    rows = _antialias_weights(torch.arange(stack.shape[2], dtype=stack.dtype), size)
    columns = _antialias_weights(torch.arange(stack.shape[3], dtype=stack.dtype), size)
    return torch.matmul(torch.matmul(rows, stack), columns.transpose(0, 1))


class BrowserNetwork(torch.nn.Module):
    """A slice in the NIfTI file's layout in, its mask out: predict's steps around the network."""

    def __init__(self, network: torch.nn.Module, preprocessing: dict, threshold: float = THRESHOLD):
        super().__init__()
        self.net = network
        self.size = int(preprocessing["size"])
        self.offset, self.scale = float(preprocessing["hu_offset"]), float(preprocessing["hu_scale"])
        self.threshold = threshold

    def _working(self, stack: torch.Tensor) -> torch.Tensor:
        return antialiased_resize(stack, self.size)

    def forward(self, slices: torch.Tensor, lungs: torch.Tensor | None = None) -> torch.Tensor:
        image = slices.transpose(1, 2)[:, None]  # (N, 1, H, W) as predict's slices: H is the file's x
        height, width = image.shape[2], image.shape[3]
        image = self._working((image + self.offset) / self.scale)
        if lungs is not None:
            lung = (lungs.transpose(1, 2)[:, None] > 0).to(image.dtype)
            image = image * (self._working(lung) >= 0.5).to(image.dtype)
        probability = torch.sigmoid(self.net(image).float())
        native = F.interpolate(probability, size=(height, width), mode="bilinear", align_corners=False)
        return (native[:, 0] >= self.threshold).to(torch.uint8).transpose(1, 2)


def safetensors_header(path: Path) -> tuple[dict, int, str]:
    """(the header's tensors, where the data starts, the header's sha256): the layout a graph's offsets fit."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if not 2 <= length <= 100_000_000:
                raise DataError(path, f"claims a {length}-byte header: not a safetensors file")
            raw = handle.read(length)
    except (OSError, struct.error) as error:
        raise DataError(path, f"is not a readable safetensors file ({error})") from None
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(path, "has a header that is not JSON: not a safetensors file") from None
    header.pop("__metadata__", None)
    return header, 8 + length, hashlib.sha256(raw).hexdigest()


def graph_key(folder: Path) -> str:
    """What decides the graph: architecture and encoder (the header's layout), the experiment's inputs, the
    preprocessing. Models with the same key run the same graph on their own weights."""
    preprocessing = read_preprocessing(folder)
    _, _, layout = safetensors_header(Path(folder) / WEIGHTS)
    lungs = experiment(preprocessing["experiment"]).inside_lungs
    numbers = [preprocessing[k] for k in ("size", "hu_offset", "hu_scale")]
    digest = hashlib.sha256(json.dumps([layout, lungs, numbers]).encode()).hexdigest()[:12]
    config = json.loads((Path(folder) / "config.json").read_text())
    name = f"{config.get('_model_class', 'model')}-{config.get('encoder_name', '')}".lower()
    return f"{name}{'-lungs' if lungs else ''}-{digest}"


def _point_into_weights(graph, weights: Path, parameters: set[str]) -> int:
    """Every initializer that is one of the network's ``parameters`` (its state dict's names) becomes external
    data at that tensor's byte range in ``weights``; returns how many. A tensor found by its name is checked byte
    for byte; one stored under another name (save_pretrained keeps a shared tensor once) is found by its bytes.
    The exporter's own constants stay in the graph even where their bytes equal a weight of this model: another
    model that shares the graph has other weights there."""
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data

    header, start, _ = safetensors_header(weights)
    data = weights.read_bytes()

    def span(name: str) -> tuple[int, int]:
        first, last = header[name]["data_offsets"]
        return start + first, last - first

    by_bytes = {}
    moved = 0
    for tensor in graph.graph.initializer:
        values = numpy_helper.to_array(tensor)
        raw = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"), copy=False).tobytes()
        name = tensor.name.removeprefix("net.")
        if name not in parameters:
            continue
        where = span(name) if name in header else None
        if where is None or data[where[0] : where[0] + where[1]] != raw:
            if not by_bytes:
                by_bytes = {data[o : o + n]: (o, n) for o, n in map(span, header)}
            where = by_bytes.get(raw)
        if where is None or len(raw) < 64:  # tiny constants stay in the graph
            continue
        set_external_data(tensor, WEIGHTS, offset=where[0], length=where[1])
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        moved += 1
    return moved


def export_graph(folder: Path, out: Path) -> dict:
    """The weights-free browser graph of the model in ``folder``, written to ``out``: its inputs, outputs and how
    many weights it reads from model.safetensors."""
    import onnx

    folder = Path(folder)
    network, preprocessing = checkpoints.load(folder, "cpu")
    lungs = experiment(preprocessing["experiment"]).inside_lungs
    wrapped = BrowserNetwork(network, preprocessing).eval()
    # two slices: an example of one would let the exporter take the batch axis for a constant 1 (a matrix product
    # broadcasts over it)
    example = (torch.full((2, 40, 48), -600.0),) + ((torch.ones(2, 40, 48),) if lungs else ())
    inputs = [INPUT, LUNGS] if lungs else [INPUT]
    axes = {0: Dim("slices"), 1: Dim("rows", min=2), 2: Dim("columns", min=2)}  # any number and size of slices
    dynamic = (axes, axes) if lungs else (axes,)
    staging = Path(out).with_name(f".{Path(out).name}.export")
    try:
        # the exporter's notes on its own internals are not the caller's to act on
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, example, str(staging), dynamo=True, optimize=False, opset_version=OPSET,
                              input_names=inputs, output_names=[OUTPUT], dynamic_shapes=dynamic,
                              external_data=False, verbose=False)  # fmt: skip
        graph = onnx.load(str(staging))
        moved = _point_into_weights(graph, folder / WEIGHTS, set(network.state_dict()))
        # the exporter's per-node notes (stack traces, fx names: 90% of the file) are of no use to a reader
        graph.ClearField("metadata_props")
        for node in graph.graph.node:
            node.ClearField("metadata_props")
            node.ClearField("doc_string")
        onnx.save(graph, str(out))
    finally:
        staging.unlink(missing_ok=True)
    return {"inputs": inputs, "output": OUTPUT, "external_weights": moved, "bytes": Path(out).stat().st_size}
