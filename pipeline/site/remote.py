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


def direct_url(base_url: str, model_id: str, store: Path, lock: Path = DVC_LOCK) -> str | None:
    """The URL of models/<id>/model.safetensors in a published copy of the remote (``store``), or None if absent.

    dvc.lock gives the md5 of the model's folder; the folder's manifest in the store lists its files' md5s.
    Everything read from them is checked before it reaches a path or the URL (dvc.lock and the manifests can
    arrive in a pull request): an md5 is 32 hexadecimal digits, or the model gets no link. ``base_url`` is
    params' ``site.remote_url``, a plain http(s) address (pipeline.core.config); the result is text for a
    page, escaped there like any other.
    """
    try:
        stages = yaml.safe_load(lock.read_text()).get("stages", {})
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    stage = stages.get(f"train@{model_id}", {}) if isinstance(stages, dict) else {}
    outs = stage.get("outs", []) if isinstance(stage, dict) else []
    if len(outs) != 1 or not isinstance(outs[0], dict):
        return None
    folder = str(outs[0].get("md5", ""))
    if not (folder.endswith(".dir") and MD5.fullmatch(folder.removesuffix(".dir"))):
        return None
    try:
        entries = json.loads((store / f"{object_path(folder.removesuffix('.dir'))}.dir").read_text())
    except (OSError, ValueError):
        return None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("relpath") == WEIGHTS and MD5.fullmatch(str(entry.get("md5", ""))):
            return f"{base_url.rstrip('/')}/{object_path(entry['md5'])}"
    return None


def direct_files(base_url: str, entries, store: Path) -> dict[str, tuple[str, str | None]]:
    """The model folder's files a reader downloads one by one (config.json, model.safetensors,
    preprocessing.json): name -> (URL, sha256 of the stored object, None where the store lacks it), from the
    folder's manifest ``entries`` (checked like ``direct_url``'s)."""
    out = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not MD5.fullmatch(str(entry.get("md5", ""))):
            continue
        name, stored = entry.get("relpath"), store / object_path(entry["md5"])
        if name in (CONFIG, WEIGHTS, PREPROCESSING):
            sha256 = hashlib.sha256(stored.read_bytes()).hexdigest() if stored.is_file() else None
            out[name] = (f"{base_url.rstrip('/')}/{object_path(entry['md5'])}", sha256)
    return dict(sorted(out.items()))


def model_downloads(base_url: str, model_id: str, store: Path, lock: Path = DVC_LOCK) -> dict:
    """``direct_files`` of a model's folder as dvc.lock records it (empty when it is not in ``store``)."""
    weights = direct_url(base_url, model_id, store, lock)
    if weights is None:
        return {}
    stages = yaml.safe_load(lock.read_text()).get("stages", {})
    folder = str(stages[f"train@{model_id}"]["outs"][0]["md5"]).removesuffix(".dir")
    return direct_files(base_url, json.loads((store / f"{object_path(folder)}.dir").read_text()), store)
