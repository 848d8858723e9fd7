"""Stage ``weights``: the ImageNet encoder weights the grid needs, in a Hugging Face cache that DVC tracks.

    python -m pipeline.model.weights   (as dvc.yaml runs it; reads params `grid`)

On a machine with internet, downloads ``config.json`` and ``model.safetensors`` of ``smp-hub/<encoder>.imagenet``
at the revision segmentation-models-pytorch pins, for every encoder of the grid when the grid has ImageNet
weights, into weights/imagenet/ (the real Hugging Face cache layout). ``dvc push`` then serves them to offline
GPU nodes (``dvc pull weights``), where training loads them with no network (pipeline.model.factory). Writes
``manifest.json`` listing what the folder holds; a grid of random weights needs none and fetches nothing.
"""

import json
from pathlib import Path

from tqdm import tqdm

from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, PipelineError, run_stage
from pipeline.core.outputs import replace_directory
from pipeline.core.paths import IMAGENET_DIR, PARAMS_FILE
from pipeline.model.factory import check_names, imagenet_source


def fetch_imagenet(encoders: list[str], cache_dir: Path) -> list[dict]:
    from huggingface_hub import hf_hub_download

    fetched = []
    for encoder in tqdm(encoders, desc="ImageNet weights", unit="encoder"):
        repo_id, revision = imagenet_source(encoder)
        try:
            for filename in ("config.json", "model.safetensors"):
                hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir)
        except Exception as error:  # the hub client raises many types for a failed download
            problem = f"{type(error).__name__}: {error}".splitlines()[0]
            raise PipelineError(f"{repo_id}@{revision[:7]}: download failed ({problem})") from None
        fetched.append({"encoder": encoder, "repo_id": repo_id, "revision": revision})
    return fetched


def main() -> None:
    parser = ArgumentParser(description="Fetch the grid's ImageNet encoder weights into weights/imagenet/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--out", type=Path, default=IMAGENET_DIR)
    args = parser.parse_args()
    grid = load_params(args.params).grid
    check_names([], grid.encoders)  # the architectures are checked where networks are built
    encoders = list(grid.encoders) if "imagenet" in grid.weights else []
    with replace_directory(args.out) as staging:
        fetched = fetch_imagenet(encoders, staging)
        (staging / "manifest.json").write_text(json.dumps(fetched, indent=2) + "\n")
    print(f"weights: {len(fetched)} ImageNet encoders in {args.out}")


if __name__ == "__main__":
    run_stage(main)
