"""Convert a trusted pickled checkpoint (``model.pt`` of this project's first releases) into a model folder.

    python -m pipeline.model.convert old/model.pt models/lung-unet-resnet18-random-converted/

The project loads only model folders in segmentation-models-pytorch's format (``config.json``,
``model.safetensors``, ``preprocessing.json``: pipeline.model.checkpoints), because unpickling a file can run any
code it carries. This reads the old file with ``torch.load(weights_only=True)``, which refuses anything but
tensors and plain containers, checks that it is a checkpoint of this project (a state dict, the model's
cell and its preprocessing), and writes the folder. Run it only on a file whose origin you trust.
"""

from pathlib import Path

import torch

from pipeline.core.cells import Cell, parse_cell_id
from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.outputs import replace_directory
from pipeline.model import checkpoints


def read_legacy(path: Path) -> tuple[dict, Cell, dict]:
    """(state dict, cell, preprocess) of an old ``model.pt``, read without unpickling code."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DataError(path, "is missing") from None
    except Exception as error:  # torch raises several unrelated types, UnpicklingError for refused code
        raise DataError(
            path, f"is not a checkpoint that loads as plain tensors ({str(error).splitlines()[0]})"
        ) from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "cell", "preprocess"} <= set(checkpoint):
        raise DataError(path, "is not a checkpoint of this project (expected state_dict, cell and preprocess)")
    cell = checkpoint["cell"]
    try:
        parsed = parse_cell_id(f"{cell['experiment']}-{cell['architecture']}-{cell['encoder']}-{cell['weights']}")
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(path, f"names no model of the grid ({error})") from None
    preprocess = checkpoint["preprocess"]
    if not isinstance(preprocess, dict):
        raise DataError(path, "its 'preprocess' is not a mapping (expected size, hu_offset and hu_scale)")
    missing = [key for key in ("size", "hu_offset", "hu_scale") if key not in preprocess]
    if missing:
        raise DataError(path, f"its 'preprocess' lacks '{missing[0]}': the scan's normalisation cannot be known")
    return checkpoint["state_dict"], parsed, preprocess


def main() -> None:
    parser = ArgumentParser(description="Convert a trusted pickled model.pt into a safe model folder.")
    parser.add_argument("checkpoint", type=Path, help="the old model.pt")
    parser.add_argument("out", type=Path, help="the model folder to write (must not exist yet)")
    args = parser.parse_args()
    if args.out.exists():
        raise PipelineError(f"{args.out}: already exists; give a new folder")
    if not args.out.parent.is_dir():
        raise PipelineError(f"{args.out}: its folder {args.out.parent} does not exist")
    state, cell, preprocess = read_legacy(args.checkpoint)
    with replace_directory(args.out) as staging:
        try:
            record = checkpoints.save(state, cell, preprocess, staging)
        except (RuntimeError, TypeError, ValueError) as error:
            problem = str(error).splitlines()[0]
            raise DataError(args.checkpoint, f"its weights or preprocessing do not fit {cell.id} ({problem})") from None
        try:  # the folder must read back as any other: preprocessing within bounds, weights of the right kind
            checkpoints.load(staging)
        except DataError as error:
            problem = f"converted, it would not load: {error.path.name} {error.problem}"
            raise DataError(args.checkpoint, problem) from None
    print(f"convert: {args.checkpoint} ({cell.id}) -> {args.out}/ ({record['bytes']} bytes, sha256 {record['sha256']})")


if __name__ == "__main__":
    run_stage(main)
