"""Shared fixtures, each built once per test run (session scope) and read-only for the tests that use it (copy
before changing): tiny synthetic data, its prepared arrays, the tiny grid run end to end through DVC (`dvc exp
run`), one tiny project with every run of that grid trained, evaluated and aggregated (the DVC run's outputs where
the run builds it, else built in-process), the results fixture and the site built from it; a project copy for DVC
runs, and a loopback HTTP server."""

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from benchmarks.browser import SHUTDOWN_POLL_S
from pipeline.core import profiles
from pipeline.core.config import Params, parse_params
from pipeline.data import phantom

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one torch thread each, not two apiece fighting over the cores (measured: the
    # inner loop 136 s with the default threads), and one in every process a test starts (stages, `dvc repro`,
    # trainers): with two threads apiece beside the other worker's work, OpenMP's waiting threads spun on the
    # cores the other worker needed (measured: the Ray engine test 238 s in `make test`, 90 s alone).
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


# The kinds of test, longest first (markers in pyproject.toml); unmarked tests come after these.
LONGEST_FIRST = ("dvc", "browser", "slow")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Before `-m` deselects by marker: the kinds of test and their order (``_longest_first``); after it, with the
    tests that run: where the trained tiny project is built (``_trained_project_first``)."""
    _longest_first(items)
    result = yield
    _trained_project_first(items)
    return result


def _uses(item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


def trained_through_dvc(items) -> bool:
    """Whether the run builds the tiny grid through DVC (a test it runs reads ``dvc_tiny_project``): then
    ``tiny_project`` is that project's outputs, otherwise the stages build it in-process."""
    return any(_uses(item, "dvc_tiny_project") for item in items)


def _longest_first(items) -> None:
    """A test that reads the project run through DVC is a `dvc` test, whatever its other markers (the inner loop
    skips it). Then the longest kinds first: `make test` spreads the test files over two workers in the order of
    their first test (pytest-xdist, ``--dist loadfile --no-loadscope-reorder``), each worker taking the next file
    when it is done. The DVC and browser files go first, taken in turn (a DVC file, a browser file, the next DVC
    file, ...), then the `slow` files, then the many short ones that fill the gaps at the end. Measured on 2 cores:
    with the browser files last, one worker waited for the other for the final 62 s; with two browser files at
    once (chromium's threads against each other) each took half as long again."""

    for item in items:
        if _uses(item, "dvc_tiny_project"):
            item.add_marker(pytest.mark.dvc)

    def kind(item) -> int:
        marked = (rank for rank, name in enumerate(LONGEST_FIRST) if item.get_closest_marker(name))
        return next(marked, len(LONGEST_FIRST))

    # A file goes where its longest kind of test goes, whole: its module fixtures are built once in any run.
    file_kind: dict[Path, int] = {}
    for item in items:
        file_kind[item.path] = min(kind(item), file_kind.get(item.path, len(LONGEST_FIRST)))
    # Its place among the files of its kind: the first two kinds interleave, the others follow in turn.
    place: dict[Path, tuple[int, int]] = {}
    seen = Counter()
    for path, rank in file_kind.items():
        place[path] = (0, 2 * seen[rank] + rank) if rank < 2 else (rank, seen[rank])
        seen[rank] += 1
    items.sort(key=lambda item: place[item.path])


def _trained_project_first(items) -> None:
    """Where the trained tiny project is built in-process (no test of the run goes through DVC: `make check`), the
    first file that reads it goes first, and the other files that read it after every file that does not: its
    worker builds the project (a minute on 2 cores) while the other worker runs what does not need it, instead of
    waiting for it (measured: 24 s idle)."""
    if trained_through_dvc(items):
        return
    readers = list(dict.fromkeys(item.path for item in items if _uses(item, "tiny_project")))
    if readers:
        first, later = readers[0], set(readers[1:])
        items.sort(key=lambda item: (item.path != first, item.path in later))  # stable: the order above within


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """A folder ``build`` fills, built once per test run: under pytest-xdist the first worker that asks builds it
    in the run's temporary root, which every worker of the run shares, and the others wait for it and reuse it
    (each worker built its own before: the trained tiny project and the fixture site twice over). Read-only for
    tests, as every session fixture is."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # pytest-of-<user>/pytest-<n>: this run's, shared by its workers
    folder, built = root / f"shared-{name}", root / f"shared-{name}.built"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the worker dies
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed while building it left this
            folder.mkdir()
            build(folder)
            built.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_params() -> Params:
    return parse_params(profiles.compose("tiny", ROOT / "conf"))


def write_params(path: Path, profile: str = "tiny", **sections) -> Path:
    """params.yaml of a profile, with some keys of some sections replaced (``evaluate={"workers": 1}``)."""
    raw = profiles.compose(profile, ROOT / "conf")
    for section, values in sections.items():
        if isinstance(raw.get(section), dict) and isinstance(values, dict):
            raw[section].update(values)
        else:
            raw[section] = values
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_params_file(tmp_path_factory) -> Path:
    return write_params(tmp_path_factory.mktemp("params") / "params.yaml")


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
    return built_once(tmp_path_factory, "tiny", lambda folder: write_tiny_phantom(folder / "raw", tiny_params)) / "raw"


@pytest.fixture
def raw_copy(tmp_path, tiny_raw) -> Path:
    """A private copy of the tiny phantom that a test may damage."""
    return Path(shutil.copytree(tiny_raw, tmp_path / "raw"))


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory, tiny_raw, tiny_params) -> Path:
    """The tiny phantom preprocessed (data/prepared/ of the tiny profile)."""
    from pipeline.data.preprocess import preprocess

    def build(folder: Path) -> None:
        preprocess(tiny_raw, folder / "prepared", tiny_params.preprocess, tiny_params.profile)

    return built_once(tmp_path_factory, "prepared", build) / "prepared"


def run_stage_here(project: Path, module: str, *args: str) -> str:
    """A stage's ``main`` in this process, in ``project`` with its params.yaml; its output, or the test fails."""
    code, out, err = run_in_process(module, *args, cwd=project)
    assert code == 0, err
    return out


@pytest.fixture(scope="session")
def tiny_project(request, tmp_path_factory) -> Path:
    """A project folder with every run of the tiny grid trained, evaluated, aggregated and drawn, as the stages
    build it: params.yaml, data/prepared, models/, evaluation/, results/, figures/. In a run that also runs the
    tiny grid through DVC (``dvc_tiny_project``: `make test`) these are that project's outputs, not trained a
    second time; otherwise (`make check`) the stages build them here, in-process."""
    if trained_through_dvc(request.session.items):
        through_dvc = request.getfixturevalue("dvc_tiny_project")
        return built_once(tmp_path_factory, "tiny-project-from-dvc", lambda project: copy_outputs(through_dvc, project))
    prepared = request.getfixturevalue("tiny_prepared")
    return built_once(tmp_path_factory, "tiny-project", lambda project: build_in_process(prepared, project))


def copy_outputs(source: Path, project: Path) -> None:
    for part in ("params.yaml", "data/prepared", "models", "evaluation", "results", "figures"):
        (project / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (source / part).is_dir() else shutil.copy2)(source / part, project / part)


def build_in_process(tiny_prepared: Path, project: Path) -> None:
    from pipeline.core.config import load_params

    write_params(project / "params.yaml")
    shutil.copytree(tiny_prepared, project / "data" / "prepared")
    for run in load_params(project / "params.yaml").runs():
        run_stage_here(project, "pipeline.training.train", run.cell.id,
                       *(("--seed", str(run.seed)) if run.seed is not None else ()))  # fmt: skip
    run_stage_here(project, "pipeline.evaluation.evaluate")
    run_stage_here(project, "pipeline.results.aggregate")
    run_stage_here(project, "pipeline.evaluation.figures")


BIN = Path(sys.executable).parent


def _env() -> dict:
    env = dict(os.environ)
    # Stage commands call `python`: it must be this interpreter, with the project's dependencies.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@example.invalid")
    env.update(GIT_COMMITTER_NAME="test", GIT_COMMITTER_EMAIL="test@example.invalid")
    return env


def run(project: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=project, env={**_env(), **env}, capture_output=True, text=True, timeout=1200)


def dvc(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run(project, str(BIN / "dvc"), *args, **env)


def stale_stages(project: Path) -> list[str]:
    """The stages `dvc status` finds changed, asked of DVC's API in this process (the same call as the command's,
    without a second of start-up each time)."""
    from dvc.repo import Repo

    with contextlib.chdir(project), Repo(".") as repo:  # stage names as the command prints them: from the project
        return sorted(repo.status())


@pytest.fixture(scope="session")
def dvc_tiny_project(tmp_path_factory) -> Path:
    """A copy of the project switched to the tiny profile and run end to end with `dvc exp run` (the README's
    command), its results committed: every stage's outputs as DVC makes them, the browser graphs and the site
    included. Built once per test run; a test that changes it works on its own copy (``shutil.copytree``).
    One torch thread in every stage, however the tests run: tests/test_grid_engines.py compares its trainings
    with these."""

    def build(folder: Path) -> None:
        project = project_copy(folder / "project")
        result = dvc(project, "exp", "run", "-S", "profile=tiny", OMP_NUM_THREADS="1")
        assert result.returncode == 0, result.stdout + result.stderr
        run(project, "git", "add", "-A")
        assert run(project, "git", "commit", "-q", "-m", "tiny results").returncode == 0

    return built_once(tmp_path_factory, "dvc-tiny", build) / "project"


def scratch_project(project: Path, destination: Path, copied: tuple[str, ...] = ()) -> Path:
    """A session project that a test may change: params.yaml and the ``copied`` top-level folders are copied,
    everything else is linked (read-only by convention, and cheap: the models weigh hundreds of MB)."""
    destination.mkdir(parents=True, exist_ok=True)
    for entry in project.iterdir():
        target = destination / entry.name
        if entry.name == "params.yaml" or entry.name in copied:
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, target)
        else:
            target.symlink_to(entry, target_is_directory=entry.is_dir())
    return destination


@pytest.fixture(scope="session")
def fixture_records(tmp_path_factory) -> tuple[Path, Path]:
    """(results/, figures/) of the 24-model results fixture: 3 experiments x 2 architectures x 2 encoders x 2
    initialisations, the first failed and one that did not learn."""
    from benchmarks.results_fixture import write_results_fixture

    def build(root: Path) -> None:
        write_results_fixture(root, architectures=("fpn", "unet"), encoders=("resnet18", "mobilenet_v2"), epochs=5,
                              seed=1)  # fmt: skip

    root = built_once(tmp_path_factory, "fixture", build)
    return root / "results", root / "figures"


@pytest.fixture
def fixture_copy(tmp_path, fixture_records) -> tuple[Path, Path]:
    """A private copy of the results fixture (results/, figures/), for a test that damages it."""
    results, figures = (Path(shutil.copytree(source, tmp_path / source.name)) for source in fixture_records)
    return results, figures


FIXED_PROVENANCE_ARGS = ("0123456789abcdef", {"data": "d" * 8, "code": "c" * 8, "train": {"epochs": 5}}, "",
                         Path("/nonexistent"), "", "2026-12-01 00:00 UTC")  # fmt: skip


@pytest.fixture(scope="session")
def fixture_docs(tmp_path_factory, fixture_records) -> Path:
    """The Markdown the site generator writes for the results fixture (a fixed provenance)."""
    from pipeline.site.build import Provenance, generate
    from pipeline.site.data import load_results

    def build(folder: Path) -> None:
        generate(load_results(*fixture_records), Provenance(*FIXED_PROVENANCE_ARGS), folder / "docs")

    return built_once(tmp_path_factory, "docs", build) / "docs"


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory, fixture_docs) -> Path:
    """The results fixture's site, built by mkdocs once for every test that reads or browses it."""
    from pipeline.site.build import build

    return built_once(tmp_path_factory, "site", lambda folder: build(fixture_docs, folder / "public",
                                                                    ROOT / "mkdocs.yml")) / "public"  # fmt: skip


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

    from pipeline.core.errors import run_stage

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


def run_here(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``run_in_process`` as a CompletedProcess, for the tests that read a stage's output like a command's."""
    code, out, err = run_in_process(module, *args, cwd=cwd)
    return subprocess.CompletedProcess([module, *args], code, out, err)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line of a failed stage run (progress bars may precede it); no traceback."""
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """What a run left in ``folder`` besides its outputs: staging folders, backups, partial files (a lock
    file stays by design: it is how the next run knows no other is writing)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


def drop_key(path: Path, key: str) -> None:
    """Remove one key from a JSON record on disk: a record written by an older or broken stage."""
    record = json.loads(path.read_text())
    del record[key]
    path.write_text(json.dumps(record))


def _copy_bytecode(source: Path, target: Path) -> None:
    """The module's compiled bytecode too (`make test` compiles it first), so that the copy's stage processes do
    not each compile it again where PYTHONDONTWRITEBYTECODE is set; Python checks it against the source's
    modification time and size, which copy2 keeps, and compiles afresh when it does not match."""
    tag = sys.implementation.cache_tag
    compiled = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
    if compiled.is_file():
        (target.parent / "__pycache__").mkdir(exist_ok=True)
        shutil.copy2(compiled, target.parent / "__pycache__" / compiled.name)


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
            if source.suffix == ".py":
                _copy_bytecode(source, target)
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
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True)

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
