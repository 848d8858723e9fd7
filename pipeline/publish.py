"""Publish the trained models: push them to the DVC remote and write a static, read-only HTTP copy of it.

    python -m pipeline.publish public/dvcstore              # push, then copy the default remote there
    python -m pipeline.publish /srv/www/dvcstore --remote storage

A DVC remote is a directory of content-addressed files (``files/md5/<2>/<30>``); served as static files over
plain HTTP it is a working read-only remote: ``dvc pull train@<id>`` and ``dvc get`` fetch from it, and each
checkpoint has a direct URL, ``<url>/files/md5/<2>/<30>``, found from dvc.lock (``direct_url``). Push needs
a writable remote (a local directory, S3, SSH, ...); the copy needs one DVC can read as a local path. Copying
is incremental: files already in the destination are skipped.
"""

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.errors import PipelineError, run_stage
from pipeline.grid import dvc_command
from pipeline.train import CHECKPOINT


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


def _object(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def direct_url(base_url: str, model_id: str, store: Path, lock: Path = Path("dvc.lock")) -> str | None:
    """The URL of models/<id>/model.pt in a published copy of the remote (``store``), or None if absent.

    dvc.lock gives the md5 of the model's folder; the folder's manifest in the store lists its files' md5s.
    """
    stages = yaml.safe_load(lock.read_text()).get("stages", {})
    outs = stages.get(f"train@{model_id}", {}).get("outs", [])
    if len(outs) != 1 or not str(outs[0].get("md5", "")).endswith(".dir"):
        return None
    manifest = store / _object(outs[0]["md5"])
    if not manifest.exists():
        return None
    for entry in json.loads(manifest.read_text()):
        if entry["relpath"] == CHECKPOINT:
            return f"{base_url.rstrip('/')}/{_object(entry['md5'])}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Push the models and write a static HTTP copy of the remote.")
    parser.add_argument("destination", type=Path, help="folder a web server serves, e.g. public/dvcstore")
    parser.add_argument("--remote", help="the DVC remote to push to and copy (default: the default remote)")
    args = parser.parse_args()
    name, source = remote_path(args.remote)
    push = subprocess.run(dvc_command("push", "--remote", name), capture_output=True, text=True)
    if push.returncode != 0:
        lines = (push.stderr or push.stdout).strip().splitlines()
        raise PipelineError(f"dvc push to '{name}' failed: {lines[-1] if lines else push.returncode}")
    copied = copy_tree(source, args.destination)
    print(f"publish: pushed to '{name}' ({source}); {copied} new files in {args.destination}")


if __name__ == "__main__":
    run_stage(main)
