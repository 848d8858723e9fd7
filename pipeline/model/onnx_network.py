"""An outside model in ONNX, run by onnxruntime: a graph of operators and weights, no code.

Loading an ONNX file executes nothing from it (unlike a pickle): onnxruntime parses a protobuf graph and runs
its own kernels, and custom operators need a library that the caller registers explicitly, which this module
never does. A graph follows one of two contracts (``CONTRACTS``), chosen by its submitter:

- "benchmark": it takes what the grid's networks take and gives what they give: one input of shape
  (N, 1, S, S), float32, the normalised CT slice at the working size, and one output of that shape, the logits.
  The benchmark normalises, resizes (antialiased bilinear), applies the sigmoid, resizes back and thresholds,
  as for its own models.
- "native": the graph is the whole model, the submitter's own preprocessing included. It takes each scan's
  slices at the scan's own size in Hounsfield units, (N, 1, H, W) float32 (and a lesion_b graph a second
  input of that shape, the lung mask, 0 or 1), and gives probabilities of that shape in [0, 1]; the benchmark
  only thresholds them (``>= evaluate.threshold``) on the scan's own grid.

A batch axis of fixed size 1 is accepted and fed one slice at a time. Shapes are checked on the declared graph
and on one trial run before any scan is segmented.
"""

from pathlib import Path

import numpy as np

from pipeline.core.errors import DataError

ONNX_SUFFIX = ".onnx"


def _dimension(value) -> int | None:
    return value if isinstance(value, int) and value > 0 else None  # a named or unknown axis: free


MEMORY_LIMIT = 8 << 30  # bytes a submitted graph's tensors may take (a paper-size network at batch 8 takes < 4 GiB)
_BOUNDED: list = []  # the capped allocator, registered once per process


def _bounded_options():
    """Session options whose tensors come from one CPU arena capped at ``MEMORY_LIMIT``: a graph that asks for
    more (a ConstantOfShape of 100,000 x 100,000) fails at once in one line, instead of taking the machine."""
    import onnxruntime

    if not _BOUNDED:
        memory = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0,
                                           onnxruntime.OrtMemType.DEFAULT)  # fmt: skip
        onnxruntime.create_and_register_allocator(memory, onnxruntime.OrtArenaCfg(MEMORY_LIMIT, -1, -1, -1))
        _BOUNDED.append(memory)
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.use_env_allocators", "1")
    return options


def _refuse_external_data(path: Path) -> None:
    """A submitted graph is one self-contained file: weights kept in external data files beside it would not be
    copied into the submission (every later scoring would fail) and could name any file on the scoring machine."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as error:  # onnx raises DecodeError and others on a file that is no graph
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(path, f"is not a loadable ONNX model ({first[:200]})") from None
    tensors = list(graph.initializer) + [a.t for node in graph.node for a in node.attribute if a.HasField("t")]
    if any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in tensors):
        raise DataError(path, "keeps weights in external data files; submit one self-contained .onnx file "
                              "(onnx.save_model(model, path, save_as_external_data=False))")  # fmt: skip


CONTRACTS = ("benchmark", "native")


class OnnxNetwork:
    """An ONNX segmentation network under one of the ``CONTRACTS`` (see the module's docstring); ``inputs`` is 2
    for a native lesion_b graph (the slice and the lungs), else 1."""

    time_limit_s = 600.0  # one batch of at most 8 slices; a paper-size network on one CPU thread takes seconds

    def __init__(self, path: Path, contract: str = "benchmark", inputs: int = 1):
        import onnxruntime

        self.path, self.contract = Path(path), contract
        _refuse_external_data(self.path)
        options = _bounded_options()
        options.intra_op_num_threads = 1  # one thread per process, as the grid's models are evaluated
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # fatal only: its errors are reported as our one line, never printed twice
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(path, f"is not a loadable ONNX model ({first[:200]})") from None
        self.inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(self.inputs) != inputs or len(outputs) != 1:
            wanted = "the CT slice and the lung mask in" if inputs == 2 else "the CT slice in"
            given = "probabilities" if contract == "native" else "the logits"
            raise DataError(path, f"has {len(self.inputs)} inputs and {len(outputs)} outputs; expected {inputs} "
                                  f"and 1 ({wanted}, {given} out)")  # fmt: skip
        self.input, self.output = self.inputs[0], outputs[0]
        for declared in self.inputs:
            shape = list(declared.shape)
            if len(shape) != 4 or _dimension(shape[1]) not in (None, 1):
                raise DataError(path, f"takes input {declared.name!r} of shape {shape}; expected (N, 1, H, W)")
            if declared.type != "tensor(float)":
                raise DataError(path, f"takes {declared.type} as input; expected tensor(float) (float32)")
        shape = list(self.input.shape)
        self.batch = _dimension(shape[0])
        self.size = (_dimension(shape[2]), _dimension(shape[3]))  # a fixed working size, or None where free
        if contract == "native" and self.size != (None, None):
            raise DataError(path, f"fixes its slices at {shape[2]} x {shape[3]}; under the native contract it takes "
                                  "each scan at its own size: leave H and W free (dynamic axes)")  # fmt: skip
        if len(self.output.shape) != 4:
            raise DataError(path, f"gives output {self.output.name!r} of shape {self.output.shape}; expected "
                                  f"(N, 1, H, W) {'probabilities' if contract == 'native' else 'logits'}")  # fmt: skip

    def working_size(self, default: int) -> int:
        """The size the graph fixes (square), or ``default`` where its spatial axes are free."""
        height, width = self.size
        if height is not None and width is not None and height != width:
            raise DataError(self.path, f"takes {height} x {width} slices; the benchmark's slices are square")
        return height or width or default

    def _run(self, feeds: list[np.ndarray]) -> np.ndarray:
        """The graph's output for its inputs (each (N, 1, H, W) float32), of the first input's shape, finite."""
        batch = feeds[0]
        if self.batch == 1 and batch.shape[0] != 1:
            return np.concatenate([self._run([feed[i : i + 1] for feed in feeds]) for i in range(batch.shape[0])])
        import threading

        import onnxruntime

        # A submitted graph is untrusted compute: a Loop of 2^62 iterations would run for ever. A watchdog sets
        # onnxruntime's terminate flag, which the executor checks between nodes and loop iterations.
        options = onnxruntime.RunOptions()
        options.log_severity_level = 4
        watchdog = threading.Timer(self.time_limit_s, setattr, (options, "terminate", True))
        watchdog.daemon = True
        watchdog.start()
        named = {declared.name: np.ascontiguousarray(feed) for declared, feed in zip(self.inputs, feeds, strict=True)}
        try:
            (out,) = self.session.run([self.output.name], named, options)
        except Exception as error:  # onnxruntime's own failure types
            if options.terminate:
                raise DataError(
                    self.path,
                    f"ran past the time limit of {self.time_limit_s:g} s on a batch of "
                    f"shape {batch.shape}; a segmentation network takes seconds",
                ) from None
            if "bfc_arena" in str(error) or "Failed to allocate" in str(error):
                raise DataError(self.path, f"asked for more memory than the {MEMORY_LIMIT >> 30} GiB a submitted "
                                           f"graph may take, on a batch of shape {batch.shape}") from None  # fmt: skip
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(self.path, f"failed on a batch of shape {batch.shape} ({first[:200]})") from None
        finally:
            watchdog.cancel()
        what = "probability" if self.contract == "native" else "logit"
        if out.shape != batch.shape:
            raise DataError(self.path, f"gave output of shape {tuple(out.shape)} for input {tuple(batch.shape)}; "
                                       f"expected the same shape (one {what} per pixel)")  # fmt: skip
        if not np.isfinite(out).all():
            raise DataError(self.path, f"gave non-finite {what} values (NaN or infinity)")
        return out.astype(np.float32, copy=False)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """(N, 1, S, S) float32 in, (N, 1, S, S) logits out (the benchmark contract)."""
        return self._run([batch])

    def check(self, size: int) -> None:
        """One trial run on a zero slice (square at the working size; under the native contract, of a shape no
        scan has, 48 x 40, since it takes any): the shapes are what the benchmark needs."""
        if self.contract == "native":
            self.native_probabilities(np.zeros((1, 48, 40), np.float32), np.zeros((1, 48, 40), np.float32))
        else:
            self.logits(np.zeros((1, 1, size, size), dtype=np.float32))

    def native_probabilities(self, image_hu: np.ndarray, lung: np.ndarray | None = None,
                             batch_size: int = 8) -> np.ndarray:  # fmt: skip
        """Probabilities (N, H, W) of a scan's slices (N, H, W) in Hounsfield units, under the native contract;
        ``lung`` (0 or 1, same shape) is fed to a graph that takes it."""
        out = np.empty(image_hu.shape, dtype=np.float32)
        for start in range(0, image_hu.shape[0], batch_size):
            stop = start + batch_size
            feeds = [np.asarray(image_hu[start:stop], dtype=np.float32)[:, None]]
            if len(self.inputs) == 2:
                feeds.append(np.asarray(lung[start:stop], dtype=np.float32)[:, None])
            probs = self._run(feeds)[:, 0]
            if probs.min() < 0 or probs.max() > 1:
                raise DataError(self.path, f"gave values from {probs.min():.3g} to {probs.max():.3g}; under the "
                                           "native contract it gives probabilities in [0, 1] (end the graph with "
                                           "a sigmoid)")  # fmt: skip
            out[start:stop] = probs
        return out

    def probabilities(self, inputs: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Sigmoid outputs (N, S, S) for normalised inputs (N, S, S), as pipeline.model.inference gives them."""
        from scipy.special import expit

        out = np.empty(inputs.shape, dtype=np.float32)
        for start in range(0, inputs.shape[0], batch_size):
            batch = np.asarray(inputs[start : start + batch_size], dtype=np.float32)[:, None]
            out[start : start + batch_size] = expit(self.logits(batch)[:, 0])
        return out

    def parameters(self) -> int:
        """Values in the graph's weights (its initialisers): what the graph holds, which an exporter may have
        changed (batch normalisation folded into convolutions), so it is labelled as counted from the graph."""
        import onnx

        model = onnx.load(str(self.path), load_external_data=False)
        return int(sum(int(np.prod(tensor.dims, dtype=np.int64)) for tensor in model.graph.initializer))
