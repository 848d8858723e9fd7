"""Stage ``train_inputs``: everything a model's training depends on, fingerprinted in one small file.

    python -m pipeline.training.inputs    (as dvc.yaml runs it; reads params `profile` and `train`)

Writes models/train_inputs.json: the profile, the `train` parameters, and fingerprints of the training code
(every project module that ``pipeline.training.train`` imports, found from its imports:
pipeline.core.fingerprint), the prepared training and validation data, and the ImageNet weights manifest.
The 600 train@<id> cells depend on this one file instead of each reading params.yaml, hashing the code and
two data folders: with per-cell deps a no-op `dvc status` of the full grid took 11 s (DVC parses
params.yaml and rehashes the folders once per cell), with this file it is much less
(benchmarks/dvc_grid.py). The same description, with a run's id, keys its resume state and tells the grid
runner a finished run is current. This module imports no torch: the grid runner's driver uses it.
"""

import json
from pathlib import Path

from pipeline.core.cells import Run
from pipeline.core.config import Params, as_dict, load_params
from pipeline.core.errors import ArgumentParser, run_stage
from pipeline.core.fingerprint import code_fingerprint, digest, input_key
from pipeline.core.outputs import write_text_atomically
from pipeline.core.paths import IMAGENET_DIR, PARAMS_FILE, PREPARED_DIR, TRAIN_INPUTS

TRAINING = "pipeline.training.train"  # the stage whose code a trained model depends on


def describe(params: Params, prepared_dir: Path = PREPARED_DIR, imagenet_dir: Path = IMAGENET_DIR) -> dict:
    """What training depends on besides the model's own id."""
    data = [prepared_dir / "meta.json", *sorted((prepared_dir / "train").glob("*.npy")),
            *sorted((prepared_dir / "val").glob("*.npy"))]  # fmt: skip
    manifest = imagenet_dir / "manifest.json"
    return {
        "profile": params.profile,
        "train": as_dict(params.train),
        "code": code_fingerprint(TRAINING),
        "data": digest(path for path in data if path.exists()),
        "imagenet": json.loads(manifest.read_text()) if manifest.exists() else [],
    }


def inputs_key(run: Run, description: dict) -> str:
    """A fingerprint of a run: its id and what training depends on (``describe``). A resumed run, or a
    finished run recorded later, must match it."""
    return input_key({"cell": run.id, **description})[:16]


def main() -> None:
    parser = ArgumentParser(description="Record what the grid's training depends on besides the data.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--out", type=Path, default=TRAIN_INPUTS)
    args = parser.parse_args()
    params = load_params(args.params)
    inputs = describe(params)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(args.out, json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    print(f"train_inputs: {args.out} (profile {params.profile}, code {inputs['code'][:8]}, data {inputs['data'][:8]})")


if __name__ == "__main__":
    run_stage(main)
