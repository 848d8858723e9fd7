"""What a published DVC remote holds for a reader: a model folder's files by the md5s dvc.lock and the folder's
manifest give, as direct links. The site build (every model page) and ``publish`` (which writes the remote)
both read it, so neither imports the other for it.

Everything read from dvc.lock and the manifests is checked before it reaches a path or a URL (they can arrive in
a pull request): an md5 is 32 hexadecimal digits, or the model gets no link.
"""

import hashlib
import json
import re
from pathlib import Path

import yaml

from pipeline.core.paths import DVC_LOCK
from pipeline.model.folder import CONFIG, PREPROCESSING, WEIGHTS

MD5 = re.compile(r"^[0-9a-f]{32}$")


def object_path(md5: str) -> str:
    """Where a file of that md5 lies in a DVC remote; only ever called with a checked md5."""
    if not MD5.fullmatch(md5):
        raise ValueError(f"not an md5: {md5!r}")
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def folder_entries(model_id: str, store: Path, lock: Path = DVC_LOCK) -> list[dict]:
    """The files of models/<id>/ as dvc.lock and the folder's manifest in ``store`` record them, each with a
    checked md5; empty when either is absent or malformed (dvc.lock and the manifests can arrive in a pull
    request: an md5 is 32 hexadecimal digits, or the file gets no link)."""
    try:
        stages = yaml.safe_load(lock.read_text()).get("stages", {})
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    stage = stages.get(f"train@{model_id}", {}) if isinstance(stages, dict) else {}
    outs = stage.get("outs", []) if isinstance(stage, dict) else []
    if len(outs) != 1 or not isinstance(outs[0], dict):
        return []
    folder = str(outs[0].get("md5", ""))
    if not (folder.endswith(".dir") and MD5.fullmatch(folder.removesuffix(".dir"))):
        return []
    try:
        entries = json.loads((store / f"{object_path(folder.removesuffix('.dir'))}.dir").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict) and MD5.fullmatch(str(entry.get("md5", "")))]


def direct_url(base_url: str, model_id: str, store: Path, lock: Path = DVC_LOCK) -> str | None:
    """The URL of models/<id>/model.safetensors in a published copy of the remote (``store``), or None if absent.
    ``base_url`` is params' ``site.remote_url``, a plain http(s) address (pipeline.core.config); the result is
    text for a page, escaped there like any other."""
    entries = folder_entries(model_id, store, lock)
    return next((f"{base_url.rstrip('/')}/{object_path(entry['md5'])}" for entry in entries
                 if entry.get("relpath") == WEIGHTS), None)  # fmt: skip


def model_downloads(base_url: str, model_id: str, store: Path, known: dict[str, dict] | None = None,
                    lock: Path = DVC_LOCK) -> dict[str, tuple[str, str | None]]:  # fmt: skip
    """The model folder's files a reader downloads one by one (config.json, model.safetensors,
    preprocessing.json): name -> (URL, sha256), from ``folder_entries``; empty without the weights. A file of
    ``known`` (name -> its record's md5 and sha256: the weights' training record) whose md5 is the manifest's
    takes that sha256, so the weights are never read again at 600 models; the rest are hashed from the store
    (small files); None where the store lacks a file."""
    entries = {entry.get("relpath"): entry["md5"] for entry in folder_entries(model_id, store, lock)}
    if WEIGHTS not in entries:
        return {}
    out = {}
    for name in sorted({CONFIG, WEIGHTS, PREPROCESSING} & set(entries)):
        stored = store / object_path(entries[name])
        record = (known or {}).get(name) or {}
        if record.get("md5") == entries[name]:
            sha256 = record.get("sha256")
        else:
            sha256 = hashlib.sha256(stored.read_bytes()).hexdigest() if stored.is_file() else None
        out[name] = (f"{base_url.rstrip('/')}/{object_path(entries[name])}", sha256)
    return out
