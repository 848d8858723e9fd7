"""Resumable HTTP download of the study's six files, refusing HTML pages in place of data.

The original study fetched the files from Google Drive by id; ``url`` in params.yaml is a template holding
``{id}``, so tests point it at a server on 127.0.0.1. A partial download is kept as ``<name>.part`` in the
download cache and resumed with an HTTP Range request; a server that ignores the range starts it over.
"""

import shutil
import time
import urllib.error
import urllib.request
import zipfile
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from pipeline.core.errors import DataError, PipelineError
from pipeline.data import rawdata

CHUNK_BYTES = 1 << 20

# The six files of PROTOCOL.md and their Google Drive ids (no checksums were ever published).
DRIVE_FILES = {
    rawdata.TRAIN_IMAGE: "1SJoMelgRqb0EuqlTuq6dxBWf2j9Kno8S",
    rawdata.TRAIN_LESION: "1MEqpbpwXjrLrH42DqDygWeSkDq0bi92f",
    rawdata.TRAIN_LUNG: "1zj4N_KV0LBko1VSQ7FPZ38eaEGNU0K6-",
    f"{rawdata.TEST_IMAGE_DIR}.zip": "1ruTiKdmqhqdbE9xOEmjQGing76nrTK2m",
    f"{rawdata.TEST_LESION_DIR}.zip": "1gVuDwFeAGa6jIVX9MeJV5ByIHFpOo5Bp",
    f"{rawdata.TEST_LUNG_DIR}.zip": "1MIp89YhuAKh4as2v_5DUoExgt6-y3AnH",
}


class TransientError(Exception):
    """A broken connection or short read: worth another try, resuming where it stopped."""


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "covid-ct-benchmark"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch_once(url: str, name: str, partial: Path, timeout: float) -> None:
    offset = partial.stat().st_size if partial.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the range is past the end: the partial file is unusable
            partial.unlink()
            raise TransientError(f"range not satisfiable at byte {offset}") from None
        if error.code >= 500 or error.code == 429:
            raise TransientError(f"HTTP {error.code}") from None
        raise DataError(name, f"download refused: HTTP {error.code} {error.reason} from {url}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, HTTPException) as error:
        raise TransientError(str(getattr(error, "reason", error))) from None
    with response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/html"):
            raise DataError(
                name,
                "the server sent an HTML page, not the file (Google Drive quota reached, or no access?)",
            )
        resumed = response.status == 206
        if not resumed:
            offset = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length is not None else None
        mode = "ab" if resumed else "wb"
        with (
            open(partial, mode) as handle,
            tqdm(total=expected, initial=offset, unit="B", unit_scale=True, desc=name, leave=False) as bar,
        ):
            try:
                while chunk := response.read(CHUNK_BYTES):
                    handle.write(chunk)
                    bar.update(len(chunk))
            except (TimeoutError, ConnectionError, HTTPException, OSError) as error:
                raise TransientError(f"connection broke: {error}") from None
    received = partial.stat().st_size
    if expected is not None and received < expected:
        raise TransientError(f"connection closed after {received} of {expected} bytes")


def fetch(url: str, name: str, cache_dir: Path, timeout: float, retries: int) -> Path:
    """Download ``url`` to ``cache_dir/name`` (resuming a partial download); return the file's path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / name
    if final.exists():
        return final
    partial = cache_dir / f"{name}.part"
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, name, partial, timeout)
            break
        except TransientError as error:
            if attempt == retries:
                raise PipelineError(
                    f"{name}: download failed after {retries + 1} tries ({error}); run again to resume"
                ) from None
            time.sleep(min(2**attempt, 30))
    partial.rename(final)
    return final


def unpack_volumes(archive: Path, out_dir: Path) -> list[str]:
    """Extract the numbered NIfTI volumes of a test archive into out_dir, ignoring folders inside the zip."""
    rawdata.check_not_html(archive)
    if not zipfile.is_zipfile(archive):
        raise DataError(archive, "is not a zip archive (truncated download?)")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                # Only the base name is used, so a member can never write outside out_dir.
                base = Path(member.filename).name
                if member.is_dir() or not rawdata.is_volume_name(base):
                    continue
                with bundle.open(member) as source, open(out_dir / base, "wb") as target:
                    shutil.copyfileobj(source, target)
                names.append(base)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise DataError(archive, f"is a corrupt zip archive ({error})") from None
    if not names:
        raise DataError(archive, "holds no numbered NIfTI volumes (1.nii.gz, 2.nii.gz, ...)")
    return names


def forget(cache_dir: Path, name: str) -> None:
    """Drop a downloaded file that failed validation, so the next run fetches it again."""
    (cache_dir / name).unlink(missing_ok=True)
