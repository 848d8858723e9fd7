"""Submissions: outside models and predictions scored, ranked and published beside the grid's models.

    submissions/<name>/
        submission.json      who, what, for which experiment and test set, the sha256 of every file scored (git)
        predictions/         one binary mask per test volume, named as the test volumes (DVC: predictions.dvc)
      or model/              a segmentation-models-pytorch folder (DVC: model.dvc)
      or model.onnx          an ONNX model (DVC: model.onnx.dvc)

``python -m pipeline.submit`` writes a submission; the ``score`` stage scores every one; ``aggregate`` ranks
them among the grid's models. Removing a submission is deleting its folder. A name is lower-case letters,
digits and single hyphens (``NAME_GRAMMAR``) and is the submission's id everywhere (its leaderboard row, its
page). This module reads and checks the records and imports nothing heavy, so the site can use it.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.core.errors import DataError, PipelineError
from pipeline.core.experiments import NAMES as EXPERIMENTS
from pipeline.core.outputs import read_json
from pipeline.core.records import Check, check_record, hex_digest, number, one_of, text

RECORD = "submission.json"
NAME_GRAMMAR = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NAME_LENGTH = 64
# kind -> the file or folder inside submissions/<name>/ that holds what is scored (the DVC-tracked part)
PAYLOADS = {"predictions": "predictions", "smp": "model", "onnx": "model.onnx"}
KIND_TITLES = {"predictions": "predicted masks", "smp": "segmentation-models-pytorch model", "onnx": "ONNX model"}
# Free-text metadata: (most characters, what it is). Shown on pages, escaped there like every other value.
TEXT_FIELDS = {
    "title": (120, "a short title"),
    "authors": (300, "who made it"),
    "description": (2000, "what it is, in a few sentences"),
    "training_data": (500, "what it was trained on"),
}
URL_FIELDS = ("url", "paper")
URL_LENGTH = 400
# The rules of a folder of predicted masks (applied by pipeline.data.predictions, explained by the site).
NIFTI_SUFFIXES = (".nii.gz", ".nii")
IGNORED_NAMES = ("dataset.json", "plans.json", "predict_from_raw_data_args.json", "summary.json")
IGNORED_SUFFIXES = (".npz", ".pkl")  # nnU-Net's probabilities: a .pkl is a pickle, never to be opened
AFFINE_ATOL = 1e-3  # mm: NIfTI writers store the affine in float32 (SimpleITK, as nnU-Net uses, does)
AFFINE_RTOL = 1e-5
REMEDY = "write it again with `python -m pipeline.submit ... --replace`"


def case_id(name: str) -> str:
    """A NIfTI file name without its suffix: ``covid_001.nii.gz`` -> ``covid_001``, ``3.nii`` -> ``3``."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


# Names the site writes pages or files under (models/<name>.md beside models/index.md, data/models/<name>.js,
# results/<name>/ beside results' own files): a submission may not take one.
RESERVED_NAMES = frozenset({"index", "search", "models", "leaderboard", "compare", "methods", "submit", "cite",
                            "reference", "get-a-model", "downloads", "viewer", "data", "img", "assets", "try",
                            "summary", "headline", "rankings", "recipes", "volumes", "scores", "sitemap",
                            "404"})  # fmt: skip


def grid_names(params) -> set[str]:
    """The one rule for the names a submission cannot take: every run id of the grid of ``params`` (a cell's main
    run has the cell's id; a repeat ``<id>~seed<k>``)."""
    return {run.id for run in params.runs()} | {run.cell.id for run in params.runs()}


def refuse_grid_names(names, params, root: Path) -> None:
    """A DataError naming the first of ``names`` (submissions under ``root``) that a model of the grid has."""
    taken = grid_names(params)
    for name in names:
        if name in taken:
            raise DataError(root / name, "has the name of a model of the grid; rename the submission")


def check_name(name: str) -> str:
    """``name`` if it is a valid submission name, else a PipelineError saying what a name may hold."""
    if not isinstance(name, str) or len(name) > NAME_LENGTH or not NAME_GRAMMAR.fullmatch(name):
        raise PipelineError(f"{name!r} is not a submission name: lower-case letters, digits and single hyphens, "
                            f"at most {NAME_LENGTH} characters (e.g. my-unet-v2)")  # fmt: skip
    if name in RESERVED_NAMES:
        raise PipelineError(f"{name!r} is the name of a page or file of the site; choose another submission name")
    return name


def check_text(field: str, value: str) -> str:
    limit, what = TEXT_FIELDS[field]
    if "\x00" in value or len(value) > limit:
        raise PipelineError(f"--{field.replace('_', '-')}: {what}, at most {limit} characters (got {len(value)})")
    return value.strip()


def url_problem(value) -> str:
    """The one rule for every address that reaches a page, whatever its source (submit flags, submission.json,
    results records, publish): "" for an http(s) address with a host, else what is wrong. Never raises: a
    malformed address (``http://[::1``) is a problem like any other. No control character (a carriage return
    would break the links published), no space, quote or angle bracket, nothing a page could run."""
    if not isinstance(value, str):
        return "expected an http(s) address"
    detail = _url_detail(value)
    return f"expected an http(s) address ({detail})" if detail else ""


def _url_detail(value: str) -> str:
    if len(value) > URL_LENGTH:
        return f"an address of at most {URL_LENGTH} characters"
    if any(ord(character) < 32 or ord(character) == 127 or character.isspace() or character in "<>\"'`\\"
           for character in value):  # fmt: skip
        return "an address without spaces, control characters, quotes, angle brackets or backslashes"
    try:
        parts = urlsplit(value)
        if parts.port is not None and not 0 < parts.port < 65536:  # .port raises ValueError for a bad one
            return "a port between 1 and 65535"
    except ValueError:
        return "a well-formed address"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "an http:// or https:// scheme and a host"
    return ""


def check_url(field: str, value: str) -> str:
    """An http(s) address (nothing a page could run: no javascript:, data: or relative links), or ""."""
    value = value.strip()
    if not value:
        return ""
    if problem := url_problem(value):
        raise PipelineError(f"--{field}: {value[:80]!r}: {problem}")
    return value


def _text_of(limit: int) -> Check:
    return lambda value: "" if isinstance(value, str) and len(value) <= limit else f"expected text of at most {limit}"


def url_or_empty(value) -> str:
    """A record's check: "" or an address that passes ``url_problem``."""
    return "" if value == "" else url_problem(value)


def _files(value) -> str:
    if not isinstance(value, dict) or not value:
        return "expected a mapping of file names to sha256"
    for name, digest in value.items():
        if not isinstance(name, str) or "/" in name or name in ("", ".", "..") or name.startswith("."):
            return f"names the file {name!r}, which is not a plain file name"
        if problem := hex_digest(64)(digest):
            return f"gives {name} {digest!r}: {problem}"
    return ""


SCHEMA: dict[str, Check] = {
    "name": text, "experiment": one_of(*EXPERIMENTS), "kind": one_of(*PAYLOADS), "files": _files,
    "data_source": text, "profile": text, "test_set": hex_digest(64), "submitted": text,
    "params_m": number(0.0, 1e6, optional=True),
    **{field: _text_of(limit) for field, (limit, _) in TEXT_FIELDS.items()},
    **{field: url_or_empty for field in URL_FIELDS},
    "preprocessing": lambda value: "" if value is None or isinstance(value, dict) else "expected a mapping or null",
}  # fmt: skip


def read_submission(folder: Path) -> dict:
    """submissions/<name>/submission.json, checked: its name is its folder's, every field is what it says."""
    folder = Path(folder)
    path = folder / RECORD
    record = check_record(read_json(path, REMEDY), SCHEMA, path, REMEDY)
    try:
        check_name(record["name"])
    except PipelineError as error:
        raise DataError(path, str(error)) from None
    if record["name"] != folder.name:
        raise DataError(path, f"is the record of {record['name']!r}, in the folder {folder.name!r}; {REMEDY}")
    return record


def payload(folder: Path, record: dict) -> Path:
    """What a submission scores: its predictions folder, model folder or ONNX file."""
    return Path(folder) / PAYLOADS[record["kind"]]


def payload_files(folder: Path, record: dict) -> list[Path]:
    """The files of the payload, whose sha256 the record holds."""
    root = payload(folder, record)
    return [root] if root.is_file() else [root / name for name in sorted(record["files"])]


def submission_folders(root: Path) -> list[Path]:
    """Every submissions/<name>/ that holds a record, by name (a folder without one is not a submission)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(path for path in root.iterdir() if path.is_dir() and (path / RECORD).is_file())


def read_all(root: Path) -> dict[str, dict]:
    """name -> record of every submission under ``root``."""
    return {folder.name: read_submission(folder) for folder in submission_folders(root)}
