"""The real download path, against a server on 127.0.0.1 serving phantom files under Drive ids."""

import gzip
import io
import json
import zipfile

import nibabel as nib
import numpy as np
import pytest
import yaml

from pipeline.core.errors import DataError, PipelineError
from pipeline.data import download, rawdata
from tests.conftest import ROOT, error_line, leftovers, run_here

TRAIN_FILES = (rawdata.TRAIN_IMAGE, rawdata.TRAIN_LESION, rawdata.TRAIN_LUNG)


def _zip_folder(folder) -> bytes:
    """A test archive as MedSeg ships it: the volumes inside a folder named like the archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(folder.iterdir()):
            bundle.write(path, f"{folder.name}/{path.name}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def drive_files(tiny_raw) -> dict[str, bytes]:
    """The six files as the real download delivers them, keyed by their Drive file name."""
    files = {name: (tiny_raw / name).read_bytes() for name in TRAIN_FILES}
    for folder in (rawdata.TEST_IMAGE_DIR, rawdata.TEST_LESION_DIR, rawdata.TEST_LUNG_DIR):
        files[f"{folder}.zip"] = _zip_folder(tiny_raw / folder)
    return files


@pytest.fixture
def drive(file_server, drive_files):
    for name, body in drive_files.items():
        file_server.serve(download.DRIVE_FILES[name], body)
    return file_server


def _params_file(tmp_path, server, retries=2):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = "download-test"
    params["data"]["source"] = "download"
    params["data"]["download"].update(url=server.url_template, timeout_s=10.0, retries=retries)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run_data(tmp_path, server, retries=2):
    params = _params_file(tmp_path, server, retries)
    return run_here(
        "pipeline.data.fetch",
        "--params",
        str(params),
        "--out",
        str(tmp_path / "raw"),
        "--cache",
        str(tmp_path / "cache"),
    )


def test_download_stage_writes_the_studys_layout(tmp_path, drive, tiny_raw):
    result = _run_data(tmp_path, drive)
    assert result.returncode == 0, result.stderr
    raw = tmp_path / "raw"
    rawdata.validate(raw)
    assert (raw / rawdata.TRAIN_IMAGE).read_bytes() == (tiny_raw / rawdata.TRAIN_IMAGE).read_bytes()
    assert (raw / "rp_msk" / "7.nii.gz").read_bytes() == (tiny_raw / "rp_msk" / "7.nii.gz").read_bytes()
    assert json.loads((raw / "provenance.json").read_text())["source"] == "download"
    assert all(path.startswith("/file/") for path in drive.requests)


def test_fetch_resumes_a_broken_download(tmp_path, file_server):
    body = np.random.default_rng(0).bytes(3 * download.CHUNK_BYTES + 123)
    file_server.serve("abc", body)
    file_server.cut_after["/file/abc"] = download.CHUNK_BYTES + 17
    url = file_server.url_template.format(id="abc")
    path = download.fetch(url, "blob.bin", tmp_path, timeout=10, retries=1)
    assert path.read_bytes() == body
    assert file_server.ranges == [("/file/abc", f"bytes={download.CHUNK_BYTES + 17}-")]
    assert not (tmp_path / "blob.bin.part").exists()


def test_fetch_resumes_across_runs(tmp_path, file_server):
    body = b"0123456789" * 1000
    file_server.serve("abc", body)
    (tmp_path / "blob.bin.part").write_bytes(body[:4000])  # left by a killed run
    download.fetch(file_server.url_template.format(id="abc"), "blob.bin", tmp_path, timeout=10, retries=0)
    assert (tmp_path / "blob.bin").read_bytes() == body
    assert file_server.ranges == [("/file/abc", "bytes=4000-")]


def test_fetch_starts_over_when_the_server_ignores_ranges(tmp_path, file_server):
    body = b"abcdefghij" * 500
    file_server.serve("abc", body)
    file_server.ignore_ranges = True
    (tmp_path / "blob.bin.part").write_bytes(b"stale partial content")
    download.fetch(file_server.url_template.format(id="abc"), "blob.bin", tmp_path, timeout=10, retries=0)
    assert (tmp_path / "blob.bin").read_bytes() == body


def test_fetch_reports_missing_file_and_dead_server(tmp_path, file_server):
    with pytest.raises(DataError, match=r"blob\.bin: download refused: HTTP 404"):
        download.fetch(file_server.url_template.format(id="nope"), "blob.bin", tmp_path, timeout=10, retries=0)
    with pytest.raises(PipelineError, match=r"blob\.bin: download failed after 1 tries .*run again"):
        download.fetch("http://127.0.0.1:9/file", "blob.bin", tmp_path, timeout=2, retries=0)


def test_quota_page_is_refused_in_one_line(tmp_path, drive):
    quota = b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>"
    drive.serve(download.DRIVE_FILES[rawdata.TRAIN_LESION], quota, "text/html; charset=utf-8")
    line = error_line(_run_data(tmp_path, drive))
    assert line == (
        "error: tr_mask.nii.gz: the server sent an HTML page, not the file (Google Drive quota reached, or no access?)"
    )
    assert not (tmp_path / "raw").exists()


def test_html_served_as_binary_is_refused_and_dropped_from_the_cache(tmp_path, drive):
    page = b"<html><body>Sign in to continue to Google Drive</body></html>"
    drive.serve(download.DRIVE_FILES[rawdata.TRAIN_LUNG], page)
    line = error_line(_run_data(tmp_path, drive))
    assert line.startswith("error: tr_lungmasks_updated.nii.gz: is an HTML page, not data")
    assert not (tmp_path / "cache" / rawdata.TRAIN_LUNG).exists()  # fetched again next time


def test_truncated_gzip_is_refused(tmp_path, drive, drive_files):
    body = drive_files[rawdata.TRAIN_IMAGE]
    drive.serve(download.DRIVE_FILES[rawdata.TRAIN_IMAGE], body[: len(body) * 2 // 3])
    line = error_line(_run_data(tmp_path, drive))
    assert line.startswith("error: tr_im.nii.gz: is truncated or its gzip stream is corrupt")


def test_truncated_zip_is_refused(tmp_path, drive, drive_files):
    body = drive_files["rp_im.zip"]
    drive.serve(download.DRIVE_FILES["rp_im.zip"], body[: len(body) // 2])
    line = error_line(_run_data(tmp_path, drive))
    assert line == "error: rp_im.zip: is not a zip archive (truncated download?)"


def test_wrong_label_set_in_an_archive_names_archive_and_member(tmp_path, drive, tiny_raw):
    folder = tmp_path / "bad" / rawdata.TEST_LESION_DIR
    folder.mkdir(parents=True)
    for path in (tiny_raw / rawdata.TEST_LESION_DIR).iterdir():
        folder.joinpath(path.name).write_bytes(path.read_bytes())
    labels = np.asanyarray(nib.load(folder / "5.nii.gz").dataobj).copy()
    labels[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(labels, np.eye(4)), folder / "5.nii.gz")
    drive.serve(download.DRIVE_FILES["rp_msk.zip"], _zip_folder(folder))
    line = error_line(_run_data(tmp_path, drive))
    assert line == "error: rp_msk.zip (5.nii.gz): has label values {7} outside the allowed {0, 1, 2, 3}"
    assert not (tmp_path / "cache" / "rp_msk.zip").exists()


def test_a_failed_download_keeps_the_earlier_good_data(tmp_path, drive, drive_files):
    assert _run_data(tmp_path, drive).returncode == 0
    before = (tmp_path / "raw" / rawdata.TRAIN_IMAGE).read_bytes()
    for cached in (tmp_path / "cache").iterdir():
        cached.unlink()
    drive.serve(download.DRIVE_FILES[rawdata.TRAIN_IMAGE], gzip.compress(b"<html>"))
    error_line(_run_data(tmp_path, drive))
    assert (tmp_path / "raw" / rawdata.TRAIN_IMAGE).read_bytes() == before
    rawdata.validate(tmp_path / "raw")
    assert [name for name in leftovers(tmp_path) if name.startswith(".raw")] == []


def test_zip_members_cannot_escape_the_target(tmp_path, tiny_raw):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("../../1.nii.gz", (tiny_raw / "rp_im" / "1.nii.gz").read_bytes())
        bundle.writestr("__MACOSX/._1.nii.gz", b"resource fork")
    archive = tmp_path / "rp_im.zip"
    archive.write_bytes(buffer.getvalue())
    names = download.unpack_volumes(archive, tmp_path / "out")
    assert names == ["1.nii.gz"]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["1.nii.gz"]
