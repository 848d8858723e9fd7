"""Debian's Chromium driven by Playwright, and a loopback file server, for the site's browser tests, its
screenshots and its render benchmark.

Never ``playwright install``: the browser is the system's (``apt-get install chromium``). The flags keep it
from calling Google's services at start-up, which this machine's closed network refuses.
"""

import contextlib
import functools
import gzip
import io
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: apt-get install -y chromium (or `make browser`)")
    return path


# WebGL2 in software (SwiftShader through ANGLE), for the volume viewer: headless Chromium has no GPU here.
WEBGL_FLAGS = [flag for flag in CHROMIUM_FLAGS if flag != "--disable-gpu"] + [
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
# WebGPU in software too (SwiftShader's Vulkan adapter), for "Try it on your scan" on its WebGPU path.
WEBGPU_FLAGS = [*WEBGL_FLAGS, "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"]


def launch(playwright, webgl: bool = False, webgpu: bool = False):
    """Chromium, without WebGL by default (the charts need none); ``webgl=True`` renders it in software, and
    ``webgpu=True`` also offers pages a WebGPU adapter in software."""
    flags = WEBGPU_FLAGS if webgpu else WEBGL_FLAGS if webgl else CHROMIUM_FLAGS
    return playwright.chromium.launch(executable_path=chromium_path(), args=flags)


# What a static host (GitHub Pages, nginx with gzip on) compresses; images and volumes travel as they are.
COMPRESSED_TYPES = (".html", ".js", ".css", ".json", ".svg", ".txt", ".xml")


class _Handler(SimpleHTTPRequestHandler):
    """A quiet file server; with ``compress`` set, text files go out gzip-encoded to clients that accept it."""

    compress = False

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        path = Path(self.translate_path(self.path))
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (self.compress and accepts and path.is_file() and path.suffix in COMPRESSED_TYPES):
            return super().send_head()
        body = gzip.compress(path.read_bytes(), compresslevel=6)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A browser drops a request it no longer needs (a page left while its scripts load): not an error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


# How often a local server checks whether it is asked to stop: shutdown() waits for that poll (0.5 s by default,
# half a second per test that serves files).
SHUTDOWN_POLL_S = 0.05


@contextlib.contextmanager
def serve(directory: Path, compress: bool = False) -> Iterator[str]:
    """Serve a folder on 127.0.0.1 (a free port) for the duration; yields the base URL, without a slash."""
    handler = type("Handler", (_Handler,), {"compress": compress})
    httpd = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    threading.Thread(target=httpd.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
