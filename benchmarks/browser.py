"""Debian's Chromium driven by Playwright, for the site's browser tests and its render benchmark.

Never ``playwright install``: the browser is the system's (``apt-get install chromium``). The flags keep it
from calling Google's services at start-up, which this machine's closed network refuses.
"""

import shutil

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


def launch(playwright, webgl: bool = False):
    """Chromium, without WebGL by default (the charts need none); ``webgl=True`` renders it in software."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=WEBGL_FLAGS if webgl else CHROMIUM_FLAGS)
