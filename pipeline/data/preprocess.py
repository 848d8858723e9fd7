"""Stage ``preprocess``: data/raw/ (either source) -> data/prepared/ arrays, per PROTOCOL.md.

    python -m pipeline.data.preprocess (as dvc.yaml runs it; reads params `profile` and `preprocess`)

Resizes every slice to the working size, normalises intensities, binarises masks, splits the 100 training
slices by index (the first ``train_slices`` for training, the rest for validation), and keeps the test
volumes both at the working size and in their native geometry. The layout is described in pipeline.data.prepared.
An earlier data/prepared/ is replaced only when everything has been written.
"""

import csv
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.core.config import PreprocessParams, as_dict, load_params
from pipeline.core.errors import ArgumentParser, DataError, PipelineError, run_stage
from pipeline.core.outputs import replace_directory
from pipeline.core.paths import PARAMS_FILE, PREPARED_DIR, RAW_DIR
from pipeline.data import orientation, rawdata, transforms
from pipeline.data.prepared import save_split


def prepare_scan(scan: rawdata.Scan, params: PreprocessParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scan at the working size, slices first: (normalised image, binary lung, binary lesion)."""
    size = params.size
    image = transforms.normalise(transforms.slices_first(scan.image), params.hu_offset, params.hu_scale)
    image = transforms.resize_images(image, size, size)
    lung = transforms.resize_masks(transforms.binarise(transforms.slices_first(scan.lung)), size, size)
    lesion = transforms.resize_masks(transforms.binarise(transforms.slices_first(scan.lesion)), size, size)
    return image, lung, lesion


def _native_image(scan: rawdata.Scan) -> np.ndarray:
    """Hounsfield units as int16 when they are whole numbers (they are in CT), else float32."""
    image = transforms.slices_first(scan.image)
    if np.array_equal(image, np.round(image)) and image.min() >= -32768 and image.max() <= 32767:
        return image.astype(np.int16)
    return np.ascontiguousarray(image, dtype=np.float32)


def _read_source(raw_dir: Path) -> str:
    path = raw_dir / rawdata.PROVENANCE_FILE
    try:
        return str(json.loads(path.read_text())["source"])
    except FileNotFoundError:
        return "unknown"  # data placed by hand in the study's layout
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DataError(path, "is not the JSON that `python -m pipeline.data.fetch` writes") from None


def write_test_set(scans, out_dir: Path, params: PreprocessParams) -> list[dict]:
    """The test scans as the evaluation reads them (one rule for the benchmark's test set and for a reader's
    scans in ``pipeline.rescore``): each in its native geometry under native/<name>/, all at the working size
    in test/ with test/slices.csv (which volume each slice comes from); returns meta.json's volume records."""
    stacks, rows, volumes = [], [], []
    for scan in scans:
        stacks.append(prepare_scan(scan, params))
        rows += [(scan.name, index) for index in range(scan.slices)]
        volume_dir = out_dir / "native" / scan.name.split(".")[0]
        save_split(
            volume_dir,
            _native_image(scan),
            transforms.binarise(transforms.slices_first(scan.lung)),
            transforms.binarise(transforms.slices_first(scan.lesion)),
        )
        # spacing: mm per axis of the native arrays, slices first like them (NIfTI gives it as H, W, slices)
        spacing = [scan.spacing[2], scan.spacing[0], scan.spacing[1]]
        # affine: the scan's voxel-to-mm matrix, against which a submitted mask's header is checked
        volumes.append({"name": scan.name, "dir": volume_dir.name, "shape": list(scan.image.shape),
                        "spacing_mm": spacing, "affine": np.asarray(scan.affine, dtype=float).tolist()})  # fmt: skip
    test_image, test_lung, test_lesion = (np.concatenate(parts) for parts in zip(*stacks, strict=True))
    save_split(out_dir / "test", test_image, test_lung, test_lesion)
    with open(out_dir / "test" / "slices.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["volume", "slice"])
        writer.writerows(rows)
    return volumes


def preprocess(raw_dir: Path, out_dir: Path, params: PreprocessParams, profile: str) -> dict:
    train = rawdata.load_train(raw_dir)
    if not 1 <= params.train_slices < train.slices:
        raise PipelineError(
            f"params: preprocess.train_slices is {params.train_slices}; it must leave validation slices "
            f"out of the {train.slices} training slices"
        )
    image, lung, lesion = prepare_scan(train, params)
    cut = params.train_slices
    save_split(out_dir / "train", image[:cut], lung[:cut], lesion[:cut])
    save_split(out_dir / "val", image[cut:], lung[cut:], lesion[cut:])

    names = rawdata.list_test_volumes(raw_dir)
    scans = tqdm(rawdata.iter_test_scans(raw_dir), total=len(names), desc="test volumes", unit="vol")
    volumes = write_test_set(scans, out_dir, params)
    rows = sum(volume["shape"][2] for volume in volumes)

    # the training scan's axis codes: recorded in every model folder, so that predict can bring a scan stored
    # otherwise to the orientation the networks learned (pipeline.data.orientation)
    preprocess = {**as_dict(params), "orientation": orientation.codes(train.affine)}
    splits = {"train": cut, "val": train.slices - cut, "test": rows}
    return write_meta(out_dir, profile, _read_source(raw_dir), preprocess, splits, volumes)


def write_meta(out_dir: Path, profile: str, data_source: str, preprocess: dict, splits: dict,
               volumes: list[dict]) -> dict:  # fmt: skip
    """meta.json of a prepared folder (what pipeline.data.prepared.load_meta reads), written and returned."""
    meta = {"profile": profile, "data_source": data_source, "preprocess": preprocess, "splits": splits,
            "volumes": volumes}  # fmt: skip
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def main() -> None:
    parser = ArgumentParser(description="Prepare data/raw/ into arrays under data/prepared/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--raw", type=Path, default=RAW_DIR)
    parser.add_argument("--out", type=Path, default=PREPARED_DIR)
    args = parser.parse_args()
    params = load_params(args.params)
    started = time.perf_counter()
    with replace_directory(args.out) as staging:
        meta = preprocess(args.raw, staging, params.preprocess, params.profile)
    splits = meta["splits"]
    print(
        f"preprocess: {meta['data_source']} data at {params.preprocess.size}x{params.preprocess.size} -> "
        f"{args.out}: {splits['train']} train, {splits['val']} validation, {splits['test']} test slices "
        f"in {len(meta['volumes'])} volumes, in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    run_stage(main)
