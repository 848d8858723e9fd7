"""An outside model in ONNX, run by onnxruntime: a graph of operators and weights, no code.

Loading an ONNX file executes nothing from it (unlike a pickle): onnxruntime parses a protobuf graph and runs
its own kernels, and custom operators need a library that the caller registers explicitly, which this module
never does. The model must take what the benchmark's networks take and give what they give: one input of
shape (N, 1, H, W), float32, the normalised CT slice at the working size, and one output of shape
(N, 1, H, W), the logits (a sigmoid and a threshold of 0.5 make the mask). A batch axis of fixed size 1 is
accepted and fed one slice at a time. Both shapes are checked on the declared graph and on one trial run
before any scan is segmented.
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


class OnnxNetwork:
    """An ONNX segmentation network with the benchmark's input and output convention."""

    time_limit_s = 600.0  # one batch of at most 8 slices; a paper-size network on one CPU thread takes seconds

    def __init__(self, path: Path):
        import onnxruntime

        self.path = Path(path)
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
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise DataError(path, f"has {len(inputs)} inputs and {len(outputs)} outputs; expected one of each "
                                  "(the CT slice in, the logits out)")  # fmt: skip
        self.input, self.output = inputs[0], outputs[0]
        shape = list(self.input.shape)
        if len(shape) != 4 or _dimension(shape[1]) not in (None, 1):
            raise DataError(path, f"takes input {self.input.name!r} of shape {shape}; expected (N, 1, H, W)")
        if self.input.type != "tensor(float)":
            raise DataError(path, f"takes {self.input.type} as input; expected tensor(float) (float32)")
        self.batch = _dimension(shape[0])
        self.size = (_dimension(shape[2]), _dimension(shape[3]))  # a fixed working size, or None where free
        if len(self.output.shape) != 4:
            raise DataError(path, f"gives output {self.output.name!r} of shape {self.output.shape}; expected "
                                  "(N, 1, H, W) logits")  # fmt: skip

    def working_size(self, default: int) -> int:
        """The size the graph fixes (square), or ``default`` where its spatial axes are free."""
        height, width = self.size
        if height is not None and width is not None and height != width:
            raise DataError(self.path, f"takes {height} x {width} slices; the benchmark's slices are square")
        return height or width or default

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """(N, 1, S, S) float32 in, (N, 1, S, S) logits out."""
        if self.batch == 1 and batch.shape[0] != 1:
            return np.concatenate([self.logits(batch[i : i + 1]) for i in range(batch.shape[0])])
        import threading

        import onnxruntime

        # A submitted graph is untrusted compute: a Loop of 2^62 iterations would run for ever. A watchdog sets
        # onnxruntime's terminate flag, which the executor checks between nodes and loop iterations.
        options = onnxruntime.RunOptions()
        options.log_severity_level = 4
        watchdog = threading.Timer(self.time_limit_s, setattr, (options, "terminate", True))
        watchdog.daemon = True
        watchdog.start()
        try:
            (out,) = self.session.run([self.output.name], {self.input.name: np.ascontiguousarray(batch)}, options)
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
        if out.shape != batch.shape:
            raise DataError(self.path, f"gave output of shape {tuple(out.shape)} for input {tuple(batch.shape)}; "
                                       "expected the same shape (one logit per pixel)")  # fmt: skip
        if not np.isfinite(out).all():
            raise DataError(self.path, "gave non-finite logits (NaN or infinity)")
        return out.astype(np.float32, copy=False)

    def check(self, size: int) -> None:
        """One trial run on a zero slice at the working size: the shapes are what the benchmark needs."""
        self.logits(np.zeros((1, 1, size, size), dtype=np.float32))

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
