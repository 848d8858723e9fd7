"""Stage ``data``: the study's six files in data/raw/, from the synthetic phantom or the real download.

    python -m pipeline.data.fetch      (as dvc.yaml runs it; reads params `profile` and `data`)

Writes data/raw/ in the layout of pipeline.data.rawdata plus ``provenance.json`` (source, profile, parameters),
and validates every file before replacing an earlier data/raw/. With ``data.source: download`` the six files
are fetched into .cache/downloads/ first (resumable; a file that fails validation is dropped from the cache
so the next run fetches it again).
"""

import json
import os
import shutil
import time
from pathlib import Path

from tqdm import tqdm

from pipeline.core.config import DataParams, as_dict, load_params
from pipeline.core.errors import ArgumentParser, DataError, run_stage
from pipeline.core.outputs import replace_directory
from pipeline.core.paths import DOWNLOAD_CACHE, PARAMS_FILE, RAW_DIR
from pipeline.data import download, phantom, rawdata


def write_phantom(params: DataParams, out_dir: Path) -> rawdata.Summary:
    settings = params.phantom
    with tqdm(total=1 + rawdata.TEST_VOLUMES, desc="phantom", unit="scan") as progress:
        phantom.write_dataset(
            out_dir,
            seed=settings.seed,
            train_size=settings.train_size,
            test_size=settings.test_size,
            slices_min=settings.test_slices_min,
            slices_max=settings.test_slices_max,
            noise_hu=settings.noise_hu,
            progress=progress,
            workers=min(os.cpu_count() or 1, 1 + rawdata.TEST_VOLUMES),
        )
    return rawdata.validate(out_dir)


def _downloaded_name(staged: Path, out_dir: Path) -> str:
    """The downloaded file a staged path came from: tr_*.nii.gz itself, or the zip of a test volume."""
    relative = staged.relative_to(out_dir)
    return relative.name if len(relative.parts) == 1 else f"{relative.parts[0]}.zip"


def write_download(params: DataParams, out_dir: Path, cache_dir: Path) -> rawdata.Summary:
    settings = params.download
    files = {}
    for name, drive_id in tqdm(download.DRIVE_FILES.items(), desc="download", unit="file"):
        url = settings.url.format(id=drive_id)
        files[name] = download.fetch(url, name, cache_dir, settings.timeout_s, settings.retries)
    for name, path in files.items():
        try:
            if name.endswith(".zip"):
                download.unpack_volumes(path, out_dir / name.removesuffix(".zip"))
            else:
                rawdata.check_not_html(path)
                shutil.copyfile(path, out_dir / name)
        except DataError as error:
            download.forget(cache_dir, name)
            raise DataError(name, error.problem) from None
    try:
        return rawdata.validate(out_dir)
    except DataError as error:
        name = _downloaded_name(error.path, out_dir)
        download.forget(cache_dir, name)
        member = f" ({error.path.name})" if name.endswith(".zip") else ""
        raise DataError(f"{name}{member}", error.problem) from None


def main() -> None:
    parser = ArgumentParser(description="Write the study's six data files into data/raw/.")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE)
    parser.add_argument("--out", type=Path, default=RAW_DIR)
    parser.add_argument("--cache", type=Path, default=DOWNLOAD_CACHE)
    args = parser.parse_args()
    params = load_params(args.params)
    started = time.perf_counter()
    with replace_directory(args.out) as staging:
        if params.data.source == "phantom":
            summary = write_phantom(params.data, staging)
        else:
            summary = write_download(params.data, staging, args.cache)
        provenance = {"source": params.data.source, "profile": params.profile, "data": as_dict(params.data)}
        (staging / rawdata.PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    sizes = sorted({shape[:2] for shape in summary.test_shapes.values()})
    print(
        f"data: {params.data.source} -> {args.out}: train {summary.train_shape}, "
        f"{len(summary.test_shapes)} test volumes of {', '.join(f'{h}x{w}' for h, w in sizes)} with "
        f"{summary.test_slices} slices, in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    run_stage(main)
