"""Publish the trained models: push them to the DVC remote and write a static, read-only HTTP copy of it; or
export them as Hugging Face hub model folders with their model cards.

    python -m pipeline.site.publish public/dvcstore         # push, then copy the default remote there
    python -m pipeline.site.publish /srv/www/dvcstore --remote storage
    python -m pipeline.site.publish --hub export/               # export/<id>/: what smp.from_pretrained loads + card
    python -m pipeline.site.publish --site deployed/ --url https://you.github.io/bench --repo-url https://github.com/you/bench

A DVC remote is a directory of content-addressed files (``files/md5/<2>/<30>``); served as static files over
plain HTTP it is a working read-only remote: ``dvc pull train@<id>`` and ``dvc get`` fetch from it, and each
checkpoint has a direct URL, ``<url>/files/md5/<2>/<30>``, found from dvc.lock (pipeline.site.remote). Push needs
a writable remote (a local directory, S3, SSH, ...); the copy needs one DVC can read as a local path. Copying
is incremental: files already in the destination are skipped.

``--site DIR --url URL`` writes one deployable folder for a static host (what ``make publish`` and
deploy/github-pages.yml run): the website at its root, built with ``site.remote_url`` = ``URL/dvcstore`` and
``site.repo_url`` = ``--repo-url`` (or params'), so every model page gives ``dvc pull``/``dvc get`` commands and a
direct link to its weights, and in ``DIR/dvcstore/`` a static DVC remote holding exactly what readers fetch:
the model folders of dvc.lock's train and repeat stages and the submissions' files, copied from this
checkout's DVC cache (``dvc pull`` them first; nothing else of the cache, the data least of all, is published).
The folder is replaced whole when it is complete (a failed run leaves the previous one).

``--hub DIR`` writes, for every trained model of the grid (``--glob`` narrows it), ``DIR/<id>/`` with the
model folder's ``config.json``, ``model.safetensors`` and ``preprocessing.json`` and a ``README.md`` model card
made from results/ (pipeline.site.model_card). ``smp.from_pretrained("DIR/<id>")`` loads it with no network;
uploading one to the hub is then ``huggingface_hub.upload_folder(repo_id=..., folder_path="DIR/<id>")``.
"""

import fnmatch
import json
import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.core import submissions as submissions_module
from pipeline.core.config import load_params
from pipeline.core.errors import ArgumentParser, PipelineError, run_stage
from pipeline.core.outputs import read_json, read_table, replace_directory
from pipeline.core.paths import (
    BROWSER_DIR,
    DVC_CACHE,
    DVC_LOCK,
    MODELS_DIR,
    PARAMS_FILE,
    RESULTS_DIR,
    SUBMISSIONS_DIR,
    TRAIN_INPUTS,
)
from pipeline.core.processes import dvc_command, dvc_message
from pipeline.model.folder import CONFIG, PREPROCESSING, WEIGHTS, read_preprocessing
from pipeline.site import model_card
from pipeline.site.remote import MD5, object_path


def remote_path(name: str | None) -> tuple[str, Path]:
    """(remote name, local directory) of a DVC remote, the default one when name is None."""
    from dvc.repo import Repo

    config = Repo(".").config
    name = name or config["core"].get("remote")
    if not name:
        raise PipelineError("no DVC remote configured; add one: dvc remote add -d storage /path/to/remote")
    remotes = config.get("remote", {})
    if name not in remotes:
        raise PipelineError(f"no DVC remote named '{name}'; configured: {', '.join(remotes) or 'none'}")
    url = remotes[name]["url"]
    if "://" in url and not url.startswith("file://"):
        raise PipelineError(f"remote '{name}' is {url}; copy it to the web server with that storage's own tools")
    return name, Path(url.removeprefix("file://"))


def copy_tree(source: Path, destination: Path) -> int:
    """Copy the files under source that destination lacks; returns how many were copied."""
    copied = 0
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(path, partial)
            partial.replace(target)  # a reader never sees half a file
            copied += 1
    return copied


def export_hub(out: Path, pattern: str, params_file: Path = PARAMS_FILE, results_dir: Path = RESULTS_DIR,
               models_dir: Path = MODELS_DIR) -> int:  # fmt: skip
    """Write a hub-ready folder per trained model; returns how many."""
    from pipeline.site.build import git_revision

    params = load_params(params_file)
    inputs = read_json(TRAIN_INPUTS, "run `dvc repro train_inputs`")
    revision = git_revision()
    board = read_table(results_dir / "leaderboard.csv", ("id", "experiment", "status"), "run `dvc repro aggregate`")
    status = dict(zip(board["id"], board["status"], strict=True))
    ranked = (board["status"] == "ok").groupby(board["experiment"]).sum()
    written = 0
    for cell in params.grid.cells():
        if not fnmatch.fnmatch(cell.id, pattern) or status.get(cell.id) == "failed":
            continue
        source = models_dir / cell.id
        if not (source / WEIGHTS).exists():
            raise PipelineError(f"{source}: no {WEIGHTS}; fetch the models first (`dvc pull train@{cell.id}`)")
        metrics = read_json(results_dir / cell.id / "metrics.json", "run `dvc repro aggregate`")
        with replace_directory(out / cell.id) as staging:
            for name in (CONFIG, WEIGHTS, PREPROCESSING):
                shutil.copyfile(source / name, staging / name)
            preprocessing = read_preprocessing(staging)
            tolerance = params.evaluate.nsd_tolerance_mm(cell.experiment)
            model_card.write(staging, metrics, preprocessing, inputs.get("train", {}), revision,
                             int(ranked[cell.experiment]), tolerance)  # fmt: skip
        written += 1
    return written


STORE = "dvcstore"  # where the copy of the remote lies in a published site


def check_url(name: str, url: str) -> str:
    """A public http(s) address, as params' site URLs must be (pipeline.core.config.SiteParams)."""
    from pipeline.core.config import SiteParams

    if url and (problem := submissions_module.url_problem(url)):
        raise PipelineError(f"--{name} {url[:80]!r}: {problem}")
    try:
        SiteParams(remote_url=url, repo_url="")
    except ValueError as error:
        raise PipelineError(f"--{name} {url!r}: {str(error).replace('remote_url', 'it')}") from None
    if not url:
        raise PipelineError(f"--{name}: give the public http(s) address the folder will be served at")
    return url.rstrip("/")


def _outs(record: dict) -> list[str]:
    """The md5s (a folder's ends in .dir) of a dvc.lock stage's or a .dvc file's outputs, checked."""
    found = []
    for out in record.get("outs", []) if isinstance(record, dict) else []:
        md5 = str(out.get("md5", "")) if isinstance(out, dict) else ""
        if MD5.fullmatch(md5.removesuffix(".dir")):
            found.append(md5)
    return found


def declared_payloads(submissions_dir: Path) -> list[Path]:
    """The DVC records of what each submission declares it holds (its kind's payload, named by
    pipeline.core.submissions.PAYLOADS): any other ``.dvc`` file in a submission's folder is never published,
    whatever data it names (a stray record naming the test set's md5 would publish the ground truth)."""
    declared = [submissions_dir / name / f"{submissions_module.PAYLOADS[record['kind']]}.dvc"
                for name, record in sorted(submissions_module.read_all(submissions_dir).items())]  # fmt: skip
    return [path for path in declared if path.is_file()]


def published_objects(runs: list, lock: Path = DVC_LOCK, cache: Path = DVC_CACHE,
                      submissions: Path = SUBMISSIONS_DIR) -> list[str]:  # fmt: skip
    """The remote's objects (``files/md5/..``) a reader can fetch: the model folder of every run of ``runs``
    (pipeline.core.cells.Run, from the params) as dvc.lock records it and every submission's files, each folder
    with its manifest. dvc.lock keeps the records of stages another profile defined: those are not published."""
    stages = yaml.safe_load(lock.read_text()).get("stages", {}) if lock.exists() else {}
    hashes = [md5 for run in runs for md5 in _outs(stages.get(run.stage, {}))]
    for record in declared_payloads(Path(submissions)):
        hashes += _outs(yaml.safe_load(record.read_text()) or {})
    objects = []
    for md5 in hashes:
        name = object_path(md5.removesuffix(".dir")) + (".dir" if md5.endswith(".dir") else "")
        objects.append(name)
        if md5.endswith(".dir"):
            manifest = cache / name
            try:
                entries = json.loads(manifest.read_text())
            except (OSError, ValueError):
                raise PipelineError(f"{manifest}: not in this checkout's DVC cache; fetch the models first "
                                    "(`dvc pull`)") from None  # fmt: skip
            objects += [
                object_path(str(e["md5"])) for e in entries if isinstance(e, dict) and MD5.fullmatch(str(e.get("md5")))
            ]
    return sorted(set(objects))


PUBLISHED_MARK = ".benchmark-site"  # in a folder `publish --site` wrote: only such a folder is replaced


def check_site_folder(folder: Path) -> None:
    """``publish --site`` replaces its folder whole: refuse anything but a missing or empty folder or one an
    earlier publish wrote (a folder of the user's files would be deleted), and a symbolic link (replacing it
    would leave the link's target behind and a real folder in its place)."""
    if folder.is_symlink():
        raise PipelineError(f"{folder}: is a symbolic link; give the folder itself (publish replaces it whole)")
    if not folder.exists():
        return
    if not folder.is_dir():
        raise PipelineError(f"{folder}: is a file; give a folder for the site")
    earlier = (folder / PUBLISHED_MARK).is_file() or ((folder / ".nojekyll").is_file() and (folder / STORE).is_dir())
    if any(folder.iterdir()) and not earlier:
        raise PipelineError(f"{folder}: holds files that no earlier publish wrote; publish replaces the folder "
                            "whole: give an empty or new folder")  # fmt: skip


def publish_site(out: Path, url: str, repo_url: str, params_file: Path = PARAMS_FILE, cache: Path = DVC_CACHE) -> int:
    """The deployable folder (see the module's docstring); returns the number of remote files it holds."""
    import dataclasses
    import tempfile

    from pipeline.site.build import build, build_settings, generate, load_provenance
    from pipeline.site.data import load_results

    objects = published_objects(load_params(params_file).runs(), cache=cache)
    missing = [name for name in objects if not (cache / name).is_file()]
    if missing:
        raise PipelineError(f"{cache / missing[0]}: not in this checkout's DVC cache ({len(missing)} files missing); "
                            "fetch the models first (`dvc pull`)")  # fmt: skip
    results = load_results(browser_dir=BROWSER_DIR)  # the try panels read the weights from the store below
    with replace_directory(out) as staging:
        store = staging / STORE
        for name in objects:
            (store / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache / name, store / name)
        provenance = load_provenance(params_file)
        provenance = dataclasses.replace(provenance, remote_url=f"{url}/{STORE}", dvc_cache=store,
                                         repo_url=repo_url or provenance.repo_url)  # fmt: skip
        site = staging / ".site"
        with tempfile.TemporaryDirectory(prefix="publish-docs-") as docs:
            generate(results, provenance, Path(docs))
            build(Path(docs), site, experiments=results.experiments, extra=build_settings(results, provenance))
        for entry in site.iterdir():
            entry.rename(staging / entry.name)
        site.rmdir()
        (staging / ".nojekyll").write_text("")  # GitHub Pages: serve the folders as they are
        (staging / PUBLISHED_MARK).write_text("written by python -m pipeline.site.publish --site; replaced whole\n")
        files = sum(1 for path in store.rglob("*") if path.is_file())
    return files


PUBLISHED_STATE = ("dvc.lock", "params.yaml")  # what a page's `dvc get`/`dvc pull` resolves in the repository


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


def default_remote() -> str:
    """The URL of the repository's committed default DVC remote (.dvc/config, not a local override), or ""."""
    name = _run(dvc_command("config", "--project", "core.remote")).stdout.strip()
    if not name:
        return ""
    return _run(dvc_command("config", "--project", f"remote.{name}.url")).stdout.strip().rstrip("/")


def check_checkout(url: str, set_remote: bool) -> None:
    """Refuse to publish commands that would fail for a reader: a page's `dvc get <repo>` and a clone's
    `dvc pull` resolve the *committed* dvc.lock against the *committed* default remote, so both must be the
    ones being published (reachability is the host's business: the configuration is checked, no network).
    ``set_remote``: make ``url``/dvcstore the default remote and commit .dvc/config first."""
    if _run(["git", "rev-parse", "--is-inside-work-tree"]).returncode != 0:
        raise PipelineError("publish: not a git checkout; publish from a clone of the project's repository")
    changed = _run(["git", "status", "--porcelain", "--", *PUBLISHED_STATE]).stdout.strip()
    if changed:
        first = changed.splitlines()[0][3:]
        raise PipelineError(f"{first}: not committed; a reader's `dvc get` would resolve the committed one and "
                            f"fail: commit it first (`git add {' '.join(PUBLISHED_STATE)} && git commit`)")  # fmt: skip
    store = f"{url}/{STORE}"
    if set_remote and default_remote() != store:
        message = f"publish: the default DVC remote is {store}"
        steps = [
            dvc_command("remote", "add", "--project", "-d", "-f", "public", store),
            ["git", "add", ".dvc/config"],
            ["git", "commit", "-q", "-m", message, "--", ".dvc/config"],
        ]
        for step in steps:
            result = _run(step)
            if result.returncode != 0:
                raise PipelineError(f"publish --set-remote: `{' '.join(step[-4:])}` failed: "
                                    f"{dvc_message(result)}")  # fmt: skip
    found = default_remote()
    if found != store:
        now = f"is {found}" if found else "is not set"
        raise PipelineError(f".dvc/config: the default DVC remote {now}, not {store}, the address readers will get; "
                            "pass --set-remote to set it and commit .dvc/config")  # fmt: skip
    if _run(["git", "status", "--porcelain", "--", ".dvc/config"]).stdout.strip():
        raise PipelineError(".dvc/config: not committed; commit it first (`git add .dvc/config && git commit`)")


def main() -> None:
    parser = ArgumentParser(description="Push the models and write a static HTTP copy of the remote.")
    parser.add_argument("destination", type=Path, nargs="?", help="folder a web server serves, e.g. public/dvcstore")
    parser.add_argument("--remote", help="the DVC remote to push to and copy (default: the default remote)")
    parser.add_argument("--hub", type=Path, help="instead: export hub model folders with model cards into this folder")
    parser.add_argument("--glob", default="*", help="--hub: only the models whose id matches")
    parser.add_argument("--site", type=Path, help="instead: write the deployable site (website + remote) here")
    parser.add_argument("--url", default="", help="--site: the public address the folder will be served at")
    parser.add_argument("--repo-url", default="", help="--site: the repository's public address")
    parser.add_argument("--set-remote", action="store_true",
                        help="--site: make URL/dvcstore the default DVC remote and commit .dvc/config")  # fmt: skip
    args = parser.parse_args()
    if args.site is not None:
        url = check_url("url", args.url)
        repo = check_url("repo-url", args.repo_url) if args.repo_url else ""
        check_site_folder(args.site)
        check_checkout(url, args.set_remote)
        files = publish_site(args.site, url, repo)
        print(f"publish: the site and {files} remote files in {args.site}/, to be served at {url}/ "
              f"(models: `dvc remote add -d public {url}/{STORE}`)")  # fmt: skip
        return
    if args.hub is not None:
        if args.hub.exists() and not args.hub.is_dir():
            raise PipelineError(f"{args.hub}: is a file; give a folder for the hub export")
        count = export_hub(args.hub, args.glob)
        print(f"publish: {count} model folders with model cards in {args.hub}/ (smp.from_pretrained loads each)")
        return
    if args.destination is None:
        raise PipelineError("give the folder to publish the remote to, or --hub DIR")
    if args.destination.exists() and not args.destination.is_dir():
        raise PipelineError(f"{args.destination}: is a file; give the folder a web server serves")
    name, source = remote_path(args.remote)
    push = subprocess.run(dvc_command("push", "--remote", name), capture_output=True, text=True)
    if push.returncode != 0:
        raise PipelineError(f"dvc push to '{name}' ({source}) failed: {dvc_message(push)}")
    copied = copy_tree(source, args.destination)
    print(f"publish: pushed to '{name}' ({source}); {copied} new files in {args.destination}")


if __name__ == "__main__":
    run_stage(main)
