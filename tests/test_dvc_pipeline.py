"""The pipeline through DVC itself: the tiny profile run end to end (conftest's ``dvc_tiny_project``), each test
on its own copy of it."""

import contextlib
import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from benchmarks.browser import SHUTDOWN_POLL_S
from pipeline.core.config import load_params
from pipeline.site.remote import direct_url
from tests.conftest import dvc, run, stale_stages

pytestmark = pytest.mark.dvc


def _edit_params(project: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _text(html: str) -> str:
    """A page's text as a reader sees it (code blocks are highlighted into spans), spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _leaderboard(project: Path) -> list[dict]:
    with open(project / "results" / "leaderboard.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def tiny_project(dvc_tiny_project, tmp_path) -> Path:
    """This test's own copy of the tiny project run through DVC: no test depends on what another one changed."""
    return Path(shutil.copytree(dvc_tiny_project, tmp_path / "project", symlinks=True))


def test_profile_switch_and_full_repro(tiny_project):
    project = tiny_project
    assert yaml.safe_load((project / "params.yaml").read_text())["profile"] == "tiny"
    meta = json.loads((project / "data" / "prepared" / "meta.json").read_text())
    assert (meta["profile"], meta["data_source"], meta["preprocess"]["size"]) == ("tiny", "phantom", 32)

    rows = _leaderboard(project)
    assert [row["id"] for row in rows] == [
        "lung-unet-resnet18-random", "lung-pspnet-resnet18-random",
        "lesion_b-unet-resnet18-random", "lesion_b-pspnet-resnet18-random",
    ]  # fmt: skip
    assert {(row["profile"], row["data_source"], row["status"]) for row in rows} == {("tiny", "phantom", "ok")}
    assert all(0 <= float(row["dice"]) <= 1 and float(row["params_m"]) > 0 for row in rows)
    for row in rows:
        volumes = (project / "results" / row["id"] / "volumes.csv").read_text().splitlines()
        assert volumes[0].startswith("volume,slices,dice,sensitivity,specificity,precision,nsd,hd95")
        assert len(volumes) == 10 and row["nsd"] and row["hd95"] and row["rank"]
    metrics = dvc(project, "metrics", "show", "--json")
    assert "lesion_b" in metrics.stdout and "best_dice" in metrics.stdout
    assert stale_stages(project) == []
    # The run ends with the website, for the experiments of this grid only.
    home = (project / "public" / "index.html").read_text()
    assert "Synthetic results" in home and "synthetic CT phantoms" in home
    assert (project / "public" / "leaderboard" / "lesion_b.html").exists()
    assert not (project / "public" / "leaderboard" / "lesion_a.html").exists()
    assert (project / "public" / "models" / "lung-pspnet-resnet18-random.html").exists()

    # A change to evaluation never retrains a model; a change to preprocessing never regenerates the data.
    # (Stage params are derived from the code each stage imports: the site imports the aggregate's code, which
    # reads the evaluate section, so it reruns too; tests/test_structure.py checks dvc.yaml against the code.)
    _edit_params(project, "evaluate", "threshold", 0.4)  # submissions are scored at the same threshold
    assert stale_stages(project) == ["evaluate", "figures", "score", "site"]
    _edit_params(project, "preprocess", "size", 64)
    # speed: at the working size; aggregate: the summary states the preprocessing
    assert stale_stages(project) == ["aggregate", "evaluate", "figures", "preprocess", "score", "site", "speed"]
    assert run(project, "git", "checkout", "params.yaml").returncode == 0
    # The published NSD tolerances come from aggregate: a change to one makes it (and all that read it) stale.
    _edit_params(project, "evaluate", "nsd_tolerance_mm_lung", 2.0)
    assert {"aggregate", "evaluate", "site"} <= set(stale_stages(project))
    assert run(project, "git", "checkout", "params.yaml").returncode == 0
    assert stale_stages(project) == []

    # One model's work per changed model: a forced rerun with nothing changed reuses every result ...
    runs = len(load_params(project / "params.yaml").runs())
    forced = dvc(project, "repro", "-f", "-s", "evaluate", "figures")
    assert f"evaluate: 0 evaluated, {runs} reused" in forced.stdout, forced.stdout + forced.stderr
    assert "figures: 0 drawn, 4 reused" in forced.stdout, forced.stdout + forced.stderr
    # ... and retraining one cell (PSPNet's: the quickest to train) evaluates at most that one (none when its
    # weights come out the same); that the results kept and made again equal a full evaluation's is
    # tests/test_evaluate.py's, in-process. What comes after the evaluation is then out of date (`dvc repro` runs
    # it, as in the project's own run).
    assert dvc(project, "repro", "-f", "-s", "train@lung-pspnet-resnet18-random").returncode == 0
    again = dvc(project, "repro", "evaluate")
    line = next(line for line in again.stdout.splitlines() if line.startswith("evaluate: "))
    evaluated, reused = (int(n) for n in re.match(r"evaluate: (\d+) evaluated, (\d+) reused", line).groups())
    assert evaluated <= 1 and evaluated + reused == runs, line
    assert stale_stages(project) == ["aggregate", "browser", "figures", "site"]


def test_a_submission_is_scored_ranked_and_published_by_dvc_repro(tiny_project, tmp_path):
    """A new user's path, through DVC: masks made by a script of ours, submitted, `dvc repro` scores only them
    and ranks them on the leaderboard with a page of their own; deleting the folder removes them again."""
    project, cell = tiny_project, "lung-unet-resnet18-random"
    masks = tmp_path / "masks"
    script = (  # what a submitter writes: segment every test scan, save each mask with its scan's header
        "import sys, pathlib, nibabel as nib\n"
        "from pipeline.predict import load_model, save_mask\n"
        "model, out = load_model(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
        "out.mkdir()\n"
        "for scan in sorted(pathlib.Path('data/raw/rp_im').iterdir()):\n"
        "    image = nib.load(scan)\n"
        "    save_mask(model.segment(image.get_fdata()), image, out / scan.name)\n"
    )
    made = run(project, sys.executable, "-c", script, cell, str(masks))
    assert made.returncode == 0 and len(list(masks.iterdir())) == 9, made.stderr
    submitted = run(project, sys.executable, "-m", "pipeline.submit", "our-masks", "--experiment", "lung",
                    "--predictions", str(masks), "--title", "Masks of a script")  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "rank" in submitted.stdout and (project / "submissions" / "our-masks" / "predictions.dvc").exists()
    assert stale_stages(project) == ["aggregate", "score"]  # the models and their evaluation: untouched
    repro = dvc(project, "repro")
    assert repro.returncode == 0, repro.stdout + repro.stderr
    assert "score: 1 scored, 0 reused" in repro.stdout and "Running stage 'evaluate'" not in repro.stdout
    rows = {row["id"]: row for row in _leaderboard(project)}
    ours = rows["our-masks"]
    assert ours["source"] == "external" and ours["rank"] and ours["tier"] and ours["dice"] == rows[cell]["dice"]
    assert "our-masks" in (project / "public" / "leaderboard" / "lung.html").read_text()
    page = (project / "public" / "models" / "our-masks.html").read_text()
    assert "Masks of a script" in page and "Against the baselines" in page and 'class="viewer"' in page
    shown = json.loads((project / "scores" / "our-masks" / "metrics.json").read_text())["viewer"]
    assert shown and (project / "public" / "viewer" / f"our-masks--{shown[0]}.js").exists()
    assert stale_stages(project) == []
    # The public board's route: the pull-request workflow's steps, one script, on this checkout.
    routed = run(project, "bash", "deploy/score-submission.sh", "our-masks", "report.md")
    assert routed.returncode == 0, routed.stdout + routed.stderr
    report = (project / "report.md").read_text()
    assert report.startswith("## Submission `our-masks` (lung)")
    assert f"| rank | {ours['rank']} of {ours['ranked_among']} (the grid's ranked checkpoints plus this one)" in report
    assert "| tier | tier " in report and "| against | role |" in report
    assert any(verdict in report for verdict in ("| better |", "| worse |", "| no relevant difference shown |"))
    (project / "report.md").unlink()
    run(project, "git", "add", "-A")
    assert run(project, "git", "commit", "-q", "-m", "a submission").returncode == 0
    # Removing a submission is deleting its folder: the next run leaves it out of the leaderboard (the pages
    # follow the leaderboard, as they did above).
    run(project, "git", "rm", "-rq", "submissions/our-masks")
    shutil.rmtree(project / "submissions" / "our-masks", ignore_errors=True)
    assert dvc(project, "repro", "aggregate").returncode == 0
    assert "our-masks" not in (project / "results" / "leaderboard.csv").read_text()
    run(project, "git", "add", "-A")
    assert run(project, "git", "commit", "-q", "-m", "the submission removed").returncode == 0


def test_publish_then_pull_get_and_predict_from_a_fresh_clone_over_http(tiny_project, tmp_path, file_server):
    cell = "lung-unet-resnet18-random"
    remote, www = tmp_path / "remote", tmp_path / "www" / "dvcstore"
    # The maintainer pushes to a writable remote and publishes a static copy of it over HTTP ...
    assert dvc(tiny_project, "remote", "add", "--local", "storage", str(remote)).returncode == 0
    result = run(tiny_project, sys.executable, "-m", "pipeline.site.publish", str(www), "--remote", "storage")
    assert result.returncode == 0, result.stdout + result.stderr
    file_server.serve_tree(www.parent)
    url = f"http://127.0.0.1:{file_server.httpd.server_port}/dvcstore"
    # ... and commits that public copy as the repository's default remote.
    assert dvc(tiny_project, "remote", "add", "-d", "public", url).returncode == 0
    run(tiny_project, "git", "add", ".dvc/config")
    assert run(tiny_project, "git", "commit", "-q", "-m", "publish the models").returncode == 0

    clone = tmp_path / "clone"
    assert run(tmp_path, "git", "clone", "-q", str(tiny_project), str(clone)).returncode == 0
    pulled = dvc(clone, "pull", f"train@{cell}")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    weights = clone / "models" / cell / "model.safetensors"
    assert weights.exists() and (clone / "models" / cell / "config.json").exists()
    assert not (clone / "models" / "lesion_b-unet-resnet18-random").exists()  # only what was asked for

    # Without a clone: dvc get reads the repository's default remote, a whole model folder.
    got = dvc(tmp_path, "get", str(tiny_project), f"models/{cell}", "-o", "got")
    assert got.returncode == 0, got.stdout + got.stderr
    assert (tmp_path / "got" / "model.safetensors").read_bytes() == weights.read_bytes()
    import segmentation_models_pytorch as smp

    smp.from_pretrained(str(tmp_path / "got"))  # the library's own loader takes it as it is

    # The direct link a model page shows serves the same file, with the checksum the page gives.
    link = direct_url(url, cell, www, lock=clone / "dvc.lock")
    assert link is not None and link.startswith(url + "/files/md5/")
    served = www / link.removeprefix(url + "/")
    assert served.read_bytes() == weights.read_bytes()
    record = json.loads((clone / "results" / cell / "metrics.json").read_text())["checkpoint"]
    assert link.endswith(record["md5"][2:]) and hashlib.sha256(served.read_bytes()).hexdigest() == record["sha256"]

    # The clone has the model but no data: segment one of the project's synthetic test volumes.
    source = tiny_project / "data" / "raw" / "rp_im" / "3.nii.gz"
    predicted = run(clone, sys.executable, "-m", "pipeline.predict", "--model", cell, str(source), "lungs.nii.gz")
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert (clone / "lungs.nii.gz").exists() and not (clone / "data" / "raw").exists()
    assert all(request.startswith("/dvcstore/") for request in file_server.requests)


@contextlib.contextmanager
def git_over_http(root: Path) -> Iterator[str]:
    """The git repositories under ``root`` served over loopback by git's smart HTTP protocol, by git's own server
    (``git http-backend``, the CGI program code hosts run) behind a small HTTP/1.1 front; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # libgit2 (dvc's git) keeps the connection alive

        def log_message(self, *args) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _backend(self) -> None:
            path, _, query = self.path.partition("?")
            body = self._body() if self.command == "POST" else b""
            env = {**os.environ, "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                   "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_ADDR": "127.0.0.1",
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}  # fmt: skip
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            # CGI: header lines, an empty line, the body (the first blank line ends the header, whatever the newlines)
            ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := out.find(sep)) >= 0]
            cut, width = min(ends) if ends else (len(out), 0)
            head, content = out[:cut], out[cut + width :]
            fields = [line.split(b":", 1) for line in head.splitlines() if b":" in line]
            status = next((int(value.split()[0]) for name, value in fields if name.lower() == b"status"), 200)
            self.send_response(status)
            for name, value in fields:
                if name.lower() != b"status":
                    self.send_header(name.decode(), value.strip().decode())
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = _backend

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_make_publish_then_a_reader_runs_the_pages_own_commands_over_http(tiny_project, tmp_path, file_server):
    """The README's flow end to end: make publish, the folder and the repository served over loopback (the
    repository as a static host serves git, the dumb HTTP protocol), then a reader with only what the model page
    says: its `dvc get` in an empty folder, and `git clone` + its `dvc pull` with no setup."""
    cell = "lung-unet-resnet18-random"
    www, hosted = tmp_path / "www", tmp_path / "hosted"
    deployed = www / "bench"
    url = f"http://127.0.0.1:{file_server.httpd.server_port}/bench"
    # What is published is committed first (publish refuses otherwise), then make's own target, with this
    # environment (its .installed is newer than the copied pyproject.toml).
    run(tiny_project, "git", "add", "-A")
    run(tiny_project, "git", "commit", "-q", "-m", "the results to publish")
    assert run(tmp_path, "git", "clone", "-q", "--bare", str(tiny_project), str(hosted / "bench.git")).returncode == 0
    with git_over_http(hosted) as git_host:
        repo_url = f"{git_host}/bench.git"
        made = run(tiny_project, "make", "publish", f"SITE_URL={url}", f"REPO_URL={repo_url}", f"VENV={sys.prefix}")
        assert made.returncode == 0, made.stdout + made.stderr
        # It made the published remote the repository's committed default: a clone's `dvc pull` needs no setup.
        config = run(tiny_project, "git", "show", "HEAD:.dvc/config").stdout
        assert f"url = {url}/dvcstore" in config
        assert run(tiny_project, "git", "push", "-q", str(hosted / "bench.git"), "--all").returncode == 0
        shutil.move(tiny_project / "deployed", deployed)
        file_server.serve_tree(www)  # what a static host serves: the folder as it was written
        reader_runs_the_pages_commands(tiny_project, tmp_path, deployed, cell, url, repo_url, file_server)


def reader_runs_the_pages_commands(tiny_project: Path, tmp_path: Path, deployed: Path, cell: str, url: str,
                                   repo_url: str, file_server) -> None:  # fmt: skip
    page = (deployed / "models" / f"{cell}.html").read_text()
    assert "<p><div" not in page  # the command block is a block of its own, not inside a paragraph
    # "Try it on your scan" reads the weights from the published store, on the same host: no copy beside the pages
    weights = re.search(r'id="try-model"[^>]* data-weights="([^"]+)"', page).group(1)
    assert weights.startswith(f"{url}/dvcstore/files/md5/") and not (deployed / "try" / "weights").exists()
    assert (deployed / "dvcstore" / weights.removeprefix(f"{url}/dvcstore/")).is_file()
    home = (deployed / "index.html").read_text()
    assert f'href="{repo_url}"' in home and (deployed / ".nojekyll").exists()
    # Published: the model folders and nothing else of the cache (no data).
    objects = [path for path in (deployed / "dvcstore").rglob("*") if path.is_file()]
    lock = yaml.safe_load((tiny_project / "dvc.lock").read_text())["stages"]
    data = [out["md5"] for name in ("data", "preprocess") for out in lock[name]["outs"]]
    assert objects and not any(path.name.endswith(md5[2:]) for md5 in data for path in objects)

    # A reader in an empty folder runs the page's `dvc get` as it is written: the whole model folder.
    text = _text(page)
    get = re.search(rf"dvc get {re.escape(repo_url)} models/{cell} -o {cell}", text)
    assert get, "the page gives no dvc get of this repository"
    reader = tmp_path / "reader"
    reader.mkdir()
    got = dvc(reader, *get.group(0).split()[1:])
    assert got.returncode == 0, got.stdout + got.stderr
    weights_here = tiny_project / "models" / cell / "model.safetensors"
    assert (reader / cell / "model.safetensors").read_bytes() == weights_here.read_bytes()
    assert {"config.json", "preprocessing.json"} <= {p.name for p in (reader / cell).iterdir()}
    # ... and in a clone of the repository, the page's `dvc pull`, with no remote added by hand.
    assert f"dvc pull train@{cell}" in text
    clone = tmp_path / "clone"
    cloned = run(tmp_path, "git", "clone", "-q", repo_url, str(clone))
    assert cloned.returncode == 0, cloned.stderr
    pulled = dvc(clone, "pull", f"train@{cell}")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (clone / "models" / cell / "model.safetensors").read_bytes() == weights_here.read_bytes()
    assert file_server.requests and all(request.startswith("/bench/dvcstore/") for request in file_server.requests)
