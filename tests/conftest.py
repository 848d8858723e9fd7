"""Shared fixtures: tiny synthetic data, a project copy for DVC runs, and a loopback HTTP server."""

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline import phantom, profiles
from pipeline.config import Params, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_params() -> Params:
    return parse_params(profiles.compose("tiny", ROOT / "conf"))


def write_tiny_phantom(out_dir: Path, params: Params, seed: int | None = None) -> Path:
    settings = params.data.phantom
    phantom.write_dataset(
        out_dir,
        seed=settings.seed if seed is None else seed,
        train_size=settings.train_size,
        test_size=settings.test_size,
        slices_min=settings.test_slices_min,
        slices_max=settings.test_slices_max,
        noise_hu=settings.noise_hu,
    )
    return out_dir


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory, tiny_params) -> Path:
    """A tiny phantom in the study's layout; read-only for tests (copy it before breaking it)."""
    return write_tiny_phantom(tmp_path_factory.mktemp("tiny") / "raw", tiny_params)


@pytest.fixture
def raw_copy(tmp_path, tiny_raw) -> Path:
    """A private copy of the tiny phantom that a test may damage."""
    return Path(shutil.copytree(tiny_raw, tmp_path / "raw"))


def run_module(module: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``python -m <module>`` as a user would, capturing its output."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def run_in_process(module: str, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``python -m module args`` run in this process, exactly as ``-m`` runs
    it (through the stage's ``run_stage``), without the seconds a new interpreter spends importing torch."""
    import contextlib
    import importlib
    import io
    import os

    from pipeline.errors import run_stage

    stage = importlib.import_module(module)
    stdout, stderr, argv, here = io.StringIO(), io.StringIO(), sys.argv, Path.cwd()
    sys.argv = [module, *args]
    code = 0
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            try:
                run_stage(stage.main)
            except SystemExit as stop:
                code = stop.code
    finally:
        sys.argv = argv
        os.chdir(here)
    return code, stdout.getvalue(), stderr.getvalue()


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed stage run (progress bars may precede it); no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def drop_key(path: Path, key: str) -> None:
    """Remove one key from a JSON record on disk: a record written by an older or broken stage."""
    record = json.loads(path.read_text())
    del record[key]
    path.write_text(json.dumps(record))


def project_copy(destination: Path) -> Path:
    """The working tree's tracked and untracked (not ignored) files, as a fresh git repository."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=destination, check=True)
    subprocess.run([*git, "add", "-A"], cwd=destination, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=destination, check=True)
    return destination


class FileServer:
    """A loopback HTTP server for download tests: files by path, with Range support and injected faults.

    ``routes`` maps a URL path to (bytes, content type). ``cut_after`` makes the first response for a path
    stop after that many bytes (a dropped connection). ``ranges`` records the Range headers it received.
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.cut_after: dict[str, int] = {}
        self.ignore_ranges = False
        self.ranges: list[tuple[str, str]] = []
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                self._respond(send_body=True)

            def do_HEAD(self) -> None:
                self._respond(send_body=False)

            def _respond(self, send_body: bool) -> None:
                path = self.path.split("?")[0]
                server.requests.append(path)
                if path not in server.routes:
                    self.send_error(404)
                    return
                body, content_type = server.routes[path]
                start, status = 0, 200
                header = self.headers.get("Range")
                if header and not server.ignore_ranges:
                    server.ranges.append((path, header))
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if not send_body:
                    return
                cut = server.cut_after.pop(path, None)
                self.wfile.write(body[start:cut] if cut is not None else body[start:])
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/file/{{id}}?export=download"

    def serve(self, drive_id: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.routes[f"/file/{drive_id}"] = (body, content_type)

    def serve_tree(self, root: Path) -> None:
        """Serve every file under root at its relative path, like a static web host."""
        for path in root.rglob("*"):
            if path.is_file():
                self.routes[f"/{path.relative_to(root).as_posix()}"] = (path.read_bytes(), "application/octet-stream")


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
