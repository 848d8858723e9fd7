"""Vendor the site's JavaScript from the npm registry: one copy of each library, with its licence, pinned and
checked. The site never loads a script from a CDN.

    python -m tools.vendor_js            # fetch what VENDORED lists into site/assets/js/vendor/, record it
    python -m tools.vendor_js --check    # only check the files on disk against the record (no network)

What only the tests load (axe-core, the accessibility checker the browser tests inject) goes to tests/vendor/
with its own record, so that it never ships with the site.

For each package the registry's tarball is downloaded, checked against the registry's published integrity
(sha512), and the listed files are extracted with the licence; ``site/assets/js/vendor/vendored.json`` records
version, tarball, integrity and each file's sha256, and a test checks the files against it.
"""

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent.parent / "site" / "assets" / "js" / "vendor"
TEST_VENDOR_DIR = Path(__file__).resolve().parent.parent / "tests" / "vendor"
RECORD = VENDOR_DIR / "vendored.json"
RECORD_NAME = RECORD.name
REGISTRY = "https://registry.npmjs.org"
# package -> (version, {file in the package: name in vendor/}, licence file in the package, or None when the
# package ships none and its package.json's licence is written out with the licence's standard text)
VENDORED = {
    "vega": ("6.4.0", {"build/vega.min.js": "vega.min.js"}, "LICENSE"),
    "tablesort": ("5.6.0", {"dist/tablesort.min.js": "tablesort.min.js",
                            "dist/sorts/tablesort.number.min.js": "tablesort.number.min.js"}, "LICENCE"),
    "iframe-worker": ("1.0.4", {"shim/index.js": "iframe-worker-shim.js"}, "LICENSE"),
    # The volume viewer (issue: see the segmentation in 3-D): a UMD build exposing the global `niivue`.
    "@niivue/niivue": ("0.69.0", {"dist/niivue.umd.js": "niivue.umd.js"}, None),
    # "Try it on your scan": onnxruntime's WebAssembly build (the UMD script defines the global `ort`; it loads
    # its .mjs and .wasm from ort/ when a reader runs a model, never before), and its WebGPU build (the same global;
    # its asyncify WebAssembly runs the WebGPU kernels and the CPU ones), loaded instead where the browser has a
    # WebGPU adapter ...
    "onnxruntime-web": ("1.31.1", {f"dist/{name}": f"ort/{name}" for name in (
        "ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
        "ort.webgpu.min.js", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")}, None),
    # ... and dcm2niix's, which converts a DICOM series in a worker (an ES module: index.js starts worker.js).
    "@niivue/dcm2niix": ("1.2.0", {"dist/index.js": "dcm2niix/index.js", "dist/worker.js": "dcm2niix/worker.js",
                                   "dist/dcm2niix.js": "dcm2niix/dcm2niix.js",
                                   "dist/dcm2niix.wasm": "dcm2niix/dcm2niix.wasm"}, None),
}  # fmt: skip
# For the browser tests only (tests/vendor/): injected by Playwright, never part of the site.
TEST_VENDORED = {
    "axe-core": ("4.14.1", {"axe.min.js": "axe.min.js"}, "LICENSE"),
}  # fmt: skip
DESTINATIONS = {VENDOR_DIR: VENDORED, TEST_VENDOR_DIR: TEST_VENDORED}


BSD_2_CLAUSE = """Redistribution and use in source and binary forms, with or without modification, are permitted
provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this list of conditions and the
   following disclaimer.
2. Redistributions in binary form must reproduce the above copyright notice, this list of conditions and the
   following disclaimer in the documentation and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS" AND ANY EXPRESS OR IMPLIED
WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR
PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT,
INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE
GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF
LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY
OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""


MIT = """Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of
the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO
THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
STANDARD_TEXTS = {"BSD-2-Clause": ("BSD 2-Clause License", BSD_2_CLAUSE), "MIT": ("MIT License", MIT)}


def _licence_text(package: str, version: str, declared: str | None) -> bytes:
    if declared not in STANDARD_TEXTS:
        raise SystemExit(f"error: {package}@{version} ships no licence file and declares {declared!r}: vendor by hand")
    title, text = STANDARD_TEXTS[declared]
    return (f"{package} {version}: its package.json declares the licence {declared}; the package ships no licence\n"
            f"file, so the licence's standard text follows. Copyright (c) the {package} authors.\n\n"
            f"{title}\n\n{text}").encode()  # fmt: skip


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # https, the npm registry
        return response.read()


def fetch(package: str, version: str, files: dict[str, str], licence: str | None, folder: Path = VENDOR_DIR) -> dict:
    meta = json.loads(_get(f"{REGISTRY}/{package}/{version}"))
    dist = meta["dist"]
    tarball = _get(dist["tarball"])
    algorithm, expected = dist["integrity"].split("-", 1)
    if base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode() != expected:
        raise SystemExit(f"error: {dist['tarball']}: does not match the registry's {algorithm} integrity")
    record = {"version": version, "tarball": dist["tarball"], "integrity": dist["integrity"],
              "license": meta.get("license"), "files": {}}  # fmt: skip
    licence_target = f"licenses/{package.split('/')[-1]}.LICENSE"
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        members = {member.name.removeprefix("package/"): member for member in archive.getmembers()}
        contents = {}
        for source, target in {**files, **({licence: licence_target} if licence else {})}.items():
            if source not in members:
                raise SystemExit(f"error: {package}@{version} has no {source}")
            contents[target] = archive.extractfile(members[source]).read()
    if not licence:
        contents[licence_target] = _licence_text(package, version, meta.get("license"))
    for target, data in contents.items():
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        (folder / target).write_bytes(data)
        record["files"][target] = sha256(data)
    return record


def check(record: dict, folder: Path = VENDOR_DIR) -> list[str]:
    """Files that differ from the record (or are missing)."""
    problems = []
    for package, entry in record.items():
        for name, digest in entry["files"].items():
            path = folder / name
            if not path.exists() or sha256(path.read_bytes()) != digest:
                problems.append(f"{path}: not the file of {package}@{entry['version']} recorded in {RECORD_NAME}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare the files with the record")
    args = parser.parse_args()
    if args.check:
        problems = [p for folder in DESTINATIONS for p in check(json.loads((folder / RECORD_NAME).read_text()), folder)]
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2 if problems else 0)
    for folder, packages in DESTINATIONS.items():
        record = {package: fetch(package, *spec, folder=folder) for package, spec in packages.items()}
        (folder / RECORD_NAME).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        for package, entry in record.items():
            print(f"{package}@{entry['version']}: {', '.join(entry['files'])}")


if __name__ == "__main__":
    main()
