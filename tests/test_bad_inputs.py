"""Bad input at every entry point: one `error:` line naming the file and the problem, exit status 2, no
traceback, and the earlier outputs unchanged (compared by hash). Grouped by entry point.

Most cases run the stage's ``main`` in this process, exactly as ``python -m`` does (``run_stage``), which keeps
the suite fast; those that need a process of their own (a file-size limit, dropped privileges) run one.
"""

import gzip
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.core import profiles
from pipeline.core.errors import PipelineError
from pipeline.core.viewer import as_script
from pipeline.data import rawdata
from tests.conftest import ROOT, drop_key, error_line, leftovers, run_in_process, write_params

BIN = Path(sys.executable).parent


def run_main(module: str, *args: str, cwd: Path | None = None) -> tuple[int, str]:
    """(exit status, stderr) of ``python -m module args`` run in this process."""
    code, _, stderr = run_in_process(module, *args, cwd=cwd)
    return code, stderr


def one_line(code: int, stderr: str) -> str:
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def hashes(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or the file itself) by its sha256: what 'unchanged' is checked against."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def params_file(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(profiles.compose("tiny", ROOT / "conf")))
    return path


def _edit(path: Path, section: str, key: str, text: str) -> None:
    """Replace one value in params.yaml by raw YAML text (e.g. ``.nan``)."""
    params = yaml.safe_load(path.read_text())
    params[section][key] = "@@"
    path.write_text(yaml.safe_dump(params).replace("'@@'", text))


# ---------------------------------------------------------------- params.yaml (every stage loads it first)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "learning_rate", ".nan", "'train.learning_rate' must be a finite number, not nan"),
        ("preprocess", "hu_scale", ".inf", "'preprocess.hu_scale' must be a finite number, not inf"),
        ("evaluate", "threshold", "-.inf", "'evaluate.threshold' must be a finite number, not -inf"),
    ],
)
def test_params_refuse_nan_and_infinity(tmp_path, params_file, section, key, value, message):
    out = tmp_path / "train_inputs.json"
    out.write_text("{}\n")
    before = hashes(out)
    _edit(params_file, section, key, value)
    for module in ("pipeline.training.inputs", "pipeline.training.train"):
        extra = ("lung-unet-resnet18-random",) if module == "pipeline.training.train" else ("--out", str(out))
        line = one_line(*run_main(module, *extra, "--params", str(params_file)))
        assert line == f"error: {params_file}: {message}"
    assert hashes(out) == before


def test_params_that_are_not_text_or_not_a_file(tmp_path, params_file):
    params_file.write_bytes(b"profile: tiny\n\xff\xfe broken\n")
    assert "not UTF-8 text" in one_line(*run_main("pipeline.training.inputs", "--params", str(params_file)))
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert one_line(*run_main("pipeline.training.inputs", "--params", str(folder))) == (
        f"error: {folder}: is a folder, not a params file"
    )


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("data", "download", None, "url must contain the placeholder {id} once and no other (found {token})"),
        ("data", "phantom", None, "test_size must lie between 32 and 2048, not 1e+12"),
        ("train", "augment", None, "rotation_deg must lie between 0 and 180, not -1e+300"),
        ("preprocess", "hu_scale", "1e-300", "hu_scale must lie between 1 and 10000, not 1e-300"),
    ],
)
def test_params_out_of_every_sane_range_are_refused(tmp_path, params_file, section, key, value, message):
    """A ``{token}`` in the download URL, a phantom of 1e12 pixels, a rotation of -1e300 degrees, a scale of
    1e-300: each stopped at start, not a traceback (or a terabyte allocation) later."""
    params = yaml.safe_load(params_file.read_text())
    if key == "download":
        params["data"]["download"]["url"] = "https://example.org/{id}?key={token}"
    elif key == "phantom":
        params["data"]["phantom"]["test_size"] = 10**12
    elif key == "augment":
        params["train"]["augment"]["rotation_deg"] = -1e300
    else:
        params[section][key] = float(value)
    params_file.write_text(yaml.safe_dump(params))
    out = tmp_path / "raw"
    line = one_line(*run_main("pipeline.data.fetch", "--params", str(params_file), "--out", str(out)))
    assert message in line and line.startswith(f"error: {params_file}: ")
    assert not out.exists()


def test_params_nested_deeper_than_any_params_file(tmp_path, params_file):
    params_file.write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    line = one_line(*run_main("pipeline.data.fetch", "--params", str(params_file), "--out", str(tmp_path / "raw")))
    assert line == f"error: {params_file}: nested too deeply to be a params file"


# ---------------------------------------------------------------- profiles (conf/)


@pytest.fixture
def conf_copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    (tmp_path / "params.yaml").write_text("earlier: params\n")
    return tmp_path


def test_a_yaml_error_in_a_profile_names_the_profile(conf_copy):
    profile = conf_copy / "conf" / "profile" / "tiny.yaml"
    profile.write_text(profile.read_text() + "grid: [unclosed\n")
    before = hashes(conf_copy / "params.yaml")
    line = one_line(*run_main("pipeline.core.profiles", "tiny", cwd=conf_copy))
    assert line.startswith(f"error: {profile.resolve()}: not valid YAML at line ")
    assert hashes(conf_copy / "params.yaml") == before


def test_a_bad_value_in_a_profile_names_the_profile(conf_copy):
    profile = conf_copy / "conf" / "profile" / "tiny.yaml"
    profile.write_text(profile.read_text().replace("epochs: 2", "epochs: 0"))
    line = one_line(*run_main("pipeline.core.profiles", "tiny", cwd=conf_copy))
    assert line.startswith("error: conf/profile/tiny.yaml (over conf/config.yaml): ")
    assert "epochs and batch_size must be at least 1" in line


def test_profiles_into_a_missing_folder(conf_copy):
    line = one_line(*run_main("pipeline.core.profiles", "tiny", "--out", "nowhere/params.yaml", cwd=conf_copy))
    assert line == "error: nowhere/params.yaml: its folder nowhere does not exist"


# ---------------------------------------------------------------- preprocess (the data loader)


def _huge_header(path: Path, shape=(30000, 30000, 400)) -> Path:
    """A NIfTI file whose header claims 30000 x 30000 x 400 int16 voxels (720 GB) but holds a few bytes."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    with gzip.open(path, "wb") as handle:
        handle.write(header.binaryblock + b"\0" * 4 + b"\0" * 64)
    return path


def test_a_header_claiming_a_huge_volume_is_refused_before_reading(tmp_path, raw_copy, params_file):
    target = raw_copy / rawdata.TEST_IMAGE_DIR / "1.nii.gz"
    _huge_header(target)
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "earlier.txt").write_text("earlier output")
    before = hashes(out)
    line = one_line(*run_main("pipeline.data.preprocess", "--params", str(params_file), "--raw", str(raw_copy),
                              "--out", str(out)))  # fmt: skip
    assert line.startswith(f"error: {target}: its header claims 30000 x 30000 x 400 voxels (3.6e+11)")
    assert hashes(out) == before


def _without_file_permission_override() -> list[str]:
    """A command prefix that makes file permissions apply to this user: root reads anything otherwise."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.slow  # a fresh interpreter (torch) or git and dvc processes: make test runs it
def test_an_unreadable_data_file(tmp_path, raw_copy, params_file):
    target = raw_copy / rawdata.TRAIN_IMAGE
    target.chmod(0)
    try:
        command = [*_without_file_permission_override(), sys.executable, "-m", "pipeline.data.preprocess", "--params",
                   str(params_file), "--raw", str(raw_copy), "--out", str(tmp_path / "prepared")]  # fmt: skip
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        target.chmod(0o644)
    assert error_line(result) == f"error: {target}: cannot be read (permission denied)"
    assert not (tmp_path / "prepared").exists()


@pytest.mark.slow  # a fresh interpreter (torch) or git and dvc processes: make test runs it
def test_a_fifo_in_place_of_a_volume_is_refused_not_read(tmp_path, raw_copy, params_file):
    target = raw_copy / rawdata.TEST_IMAGE_DIR / "2.nii.gz"
    target.unlink()
    os.mkfifo(target)  # opening it to read would wait forever for a writer
    command = [sys.executable, "-m", "pipeline.data.preprocess", "--params", str(params_file), "--raw",
               str(raw_copy), "--out", str(tmp_path / "prepared")]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert error_line(result) == f"error: {target}: is not a regular file (a pipe, socket or device): refused, " \
                                 "reading it could block"  # fmt: skip
    assert not (tmp_path / "prepared").exists()


def _nifti(path: Path, data: np.ndarray, zooms=(1.0, 1.0, 2.5)) -> Path:
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_zooms(zooms)
    nib.save(image, path)
    return path


def _ct() -> np.ndarray:
    """Air with a block of soft tissue: values a CT in Hounsfield units has."""
    volume = np.full((32, 32, 4), -1000, dtype=np.int16)
    volume[8:24, 8:24] = 40
    return volume


def _rgb(shape) -> np.ndarray:
    return np.zeros(shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (lambda p: _nifti(p, _rgb((32, 32, 4))), "holds colour (RGB) voxels, not CT values or labels"),
        (lambda p: _nifti(p, np.full((32, 32, 4), -1000 + 5j, dtype=np.complex64)), "holds complex values"),
        (lambda p: _nifti(p, _ct(), zooms=(1.0, 0.0, 2.5)),
         "its header gives the voxel size (1.0, 0.0, 2.5) (pixdim); expected three positive millimetres"),
        (lambda p: _huge_header(p, (30000, 30000, 1)), "is not a readable NIfTI file (Expected 1800000000 bytes"),
    ],
)  # fmt: skip
def test_predict_refuses_a_scan_that_is_no_ct_volume(tmp_path, model_folder, volume, message):
    """An RGB NIfTI, complex voxels, a pixdim of 0 (which nibabel would read as 1 mm), a 30000 x 30000 header
    with no data: one line each, no mask written."""
    scan = volume(tmp_path / "scan.nii.gz")
    code, err = _predict(model_folder, scan, tmp_path / "mask.nii.gz")
    line = one_line(code, err)
    assert line.startswith(f"error: {scan}: ") and message in line
    assert not (tmp_path / "mask.nii.gz").exists()


# ---------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """An untrained lung model in the train stage's folder format (the data path needs no training)."""
    from pipeline.core.cells import Cell
    from pipeline.model import checkpoints
    from pipeline.model import factory as models

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "lung-model"
    folder.mkdir()
    state = models.build_model("unet", "resnet18", "random").state_dict()
    checkpoints.save(state, Cell("lung", "unet", "resnet18", "random"), {"size": 32, "hu_offset": 500.0,
                                                                          "hu_scale": 500.0}, folder)  # fmt: skip
    return folder


@pytest.fixture
def scan(tmp_path, tiny_raw) -> Path:
    path = tmp_path / "scan.nii.gz"
    shutil.copyfile(tiny_raw / rawdata.TEST_IMAGE_DIR / "1.nii.gz", path)
    return path


def _predict(model_folder, *args) -> tuple[int, str]:
    return run_main("pipeline.predict", "--model", str(model_folder), "--device", "cpu", *map(str, args))


def test_predict_never_writes_over_its_input(tmp_path, model_folder, scan, tiny_raw):
    before = hashes(scan)
    line = one_line(*_predict(model_folder, scan, scan))
    assert line == f"error: {scan}: is an input of this command ({scan}); the mask would destroy it"
    same = tmp_path / "sub" / ".." / "scan.nii.gz"
    (tmp_path / "sub").mkdir()
    assert "is an input of this command" in one_line(*_predict(model_folder, scan, same))
    lungs = tmp_path / "lungs.nii.gz"
    shutil.copyfile(tiny_raw / rawdata.TEST_LUNG_DIR / "1.nii.gz", lungs)
    lesion_model = model_folder.parent / "lesion-b"
    if not lesion_model.exists():
        shutil.copytree(model_folder, lesion_model)
        record = json.loads((lesion_model / "preprocessing.json").read_text())
        (lesion_model / "preprocessing.json").write_text(json.dumps({**record, "experiment": "lesion_b"}))
    before_lungs = hashes(lungs)
    line = one_line(*_predict(lesion_model, scan, lungs, "--lung-mask", lungs))
    assert "is an input of this command" in line
    assert hashes(scan) == before and hashes(lungs) == before_lungs


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("missing/mask.nii.gz", "its folder {tmp}/missing does not exist"),
        ("a-folder", "is a folder; give a file name for the mask"),
        ("mask.txt", "the mask is written as NIfTI; give a name ending in .nii or .nii.gz"),
    ],
)
def test_predict_checks_its_output_before_any_work(tmp_path, model_folder, scan, output, message):
    (tmp_path / "a-folder").mkdir()
    target = tmp_path / output
    line = one_line(*_predict(model_folder, scan, target))
    assert line == f"error: {target}: {message.format(tmp=tmp_path)}"
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("threshold", ["1.5", "nan", "0"])
def test_predict_threshold_must_lie_in_the_open_unit_interval(tmp_path, model_folder, scan, threshold):
    line = one_line(*_predict(model_folder, scan, tmp_path / "mask.nii.gz", "--threshold", threshold))
    assert line == f"error: --threshold {float(threshold)}: must lie strictly between 0 and 1"
    assert not (tmp_path / "mask.nii.gz").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_predict_on_cuda_without_a_gpu_blames_the_option(tmp_path, model_folder, scan):
    line = one_line(*_predict(model_folder, scan, tmp_path / "mask.nii.gz", "--device", "cuda"))
    assert line.startswith("error: --device is cuda, but no CUDA device is available")


def _limit_file_size() -> None:
    """In the child: writes past 64 bytes fail (EFBIG) instead of killing it, as a full disk makes them fail."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


@pytest.mark.slow  # a fresh interpreter (torch) or git and dvc processes: make test runs it
def test_predict_on_a_full_disk_fails_in_one_line_and_leaves_no_partial_file(tmp_path, model_folder, scan):
    output = tmp_path / "mask.nii.gz"
    command = [sys.executable, "-m", "pipeline.predict", "--model", str(model_folder), "--device", "cpu",
               str(scan), str(output)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            preexec_fn=_limit_file_size)  # fmt: skip
    assert error_line(result).startswith(f"error: {output}: cannot be written (File too large)")
    assert not output.exists() and not list(tmp_path.glob(".*partial*"))


def _weights_as(folder: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    name = next(key for key in tensors if key.endswith(".weight") and tensors[key].dtype.is_floating_point)
    tensors[name] = change(tensors[name])
    save_file(tensors, str(folder / "model.safetensors"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _weights_as(f, lambda w: (w * 100).to(torch.int8)), "as torch.int8, where the model has"),
        (lambda f: _weights_as(f, lambda w: w.to(torch.complex64)), "as torch.complex64, where the model has"),
        (lambda f: _weights_as(f, lambda w: w * float("nan")), "holds non-finite values (NaN or infinity)"),
        (lambda f: _edit_json(f / "preprocessing.json", size=131072), "has size 131072; expected a multiple of"),
        (lambda f: _edit_json(f / "preprocessing.json", hu_scale=1e-300), "has hu_scale 1e-300; expected a number"),
    ],
)  # fmt: skip
def test_predict_refuses_a_model_folder_that_would_load_and_compute_nonsense(tmp_path, model_folder, scan, damage,
                                                                             message):  # fmt: skip
    """int8, complex or NaN weights used to load (an all-foreground or an empty mask), a working size of 131072
    tried to allocate 768 GiB, a scale of 1e-300 divided by nothing: each now refused in one line."""
    folder = Path(shutil.copytree(model_folder, tmp_path / "model"))
    damage(folder)
    line = one_line(*_predict(folder, scan, tmp_path / "mask.nii.gz"))
    assert message in line and str(folder) in line
    assert not (tmp_path / "mask.nii.gz").exists()


def _edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_predict_with_paths_it_cannot_look_at(tmp_path, model_folder, scan):
    """A symbolic-link loop as the model or the scan, a model name longer than a file name may be."""
    loop, mask = tmp_path / "loop", str(tmp_path / "m.nii.gz")
    loop.symlink_to(loop)
    line = one_line(*run_main("pipeline.predict", "--model", str(loop / "x"), str(scan), mask))
    assert line == f"error: {loop / 'x'}: no such model folder"
    line = one_line(*run_main("pipeline.predict", "--model", f"{tmp_path}/{'m' * 300}", str(scan), mask))
    assert line.startswith("error: ") and "name too long" in line.lower()
    line = one_line(*_predict(model_folder, loop, mask))
    assert line == f"error: {loop}: cannot be read (Too many levels of symbolic links)"


# ---------------------------------------------------------------- convert


def test_convert_refuses_a_legacy_checkpoint_without_its_normalisation(tmp_path, model_folder):
    from safetensors.torch import load_file

    state = load_file(model_folder / "model.safetensors")
    legacy = tmp_path / "model.pt"
    cell = {"experiment": "lung", "architecture": "unet", "encoder": "resnet18", "weights": "random"}
    torch.save({"state_dict": state, "cell": cell, "preprocess": {"size": 32, "hu_offset": 500.0}}, legacy)
    line = one_line(*run_main("pipeline.model.convert", str(legacy), str(tmp_path / "converted")))
    assert line == f"error: {legacy}: its 'preprocess' lacks 'hu_scale': the scan's normalisation cannot be known"
    assert not (tmp_path / "converted").exists()


# ---------------------------------------------------------------- train


def test_a_run_id_with_a_newline_is_one_line():
    line = one_line(*run_main("pipeline.training.train", "lung-unet-resnet18\n-random"))
    assert "\n" not in line and "is not a" in line


# ---------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def prepared(tiny_prepared) -> Path:
    return tiny_prepared


def _evaluate(tmp_path, params_file, prepared_dir) -> tuple[int, str]:
    return run_main("pipeline.evaluation.evaluate", "--params", str(params_file), "--prepared", str(prepared_dir),
                    "--models", str(tmp_path / "models"), "--out", str(tmp_path / "evaluation"))  # fmt: skip


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (lambda p: (p / "test" / "slices.csv").unlink(), "test/slices.csv", "is missing; rerun `dvc repro preprocess`"),
        (lambda p: (p / "meta.json").write_text('{"profile": "tiny"'), "meta.json", "is not valid JSON"),
        (lambda p: (p / "meta.json").write_text(json.dumps({k: v for k, v in json.loads((p / "meta.json").read_text())
                                                            .items() if k != "volumes"})),
         "meta.json", "lacks the key 'volumes'; rerun `dvc repro preprocess`"),
    ],
)  # fmt: skip
def test_evaluate_with_broken_prepared_data(tmp_path, params_file, prepared, damage, file, message):
    copy = Path(shutil.copytree(prepared, tmp_path / "prepared"))
    damage(copy)
    (tmp_path / "evaluation" / "earlier").mkdir(parents=True)
    (tmp_path / "evaluation" / "earlier" / "metrics.json").write_text("{}")
    before = hashes(tmp_path / "evaluation")
    assert one_line(*_evaluate(tmp_path, params_file, copy)) == f"error: {copy / file}: {message}"
    assert hashes(tmp_path / "evaluation") == before


# ---------------------------------------------------------------- aggregate


def test_aggregate_with_a_key_missing_from_a_train_record(tmp_path):
    from tests.test_aggregate import _params, _records

    params = _params()
    models, evaluation = _records(tmp_path, params)
    record_path = models / "lesion_b-unet-resnet18-imagenet" / "train.json"
    drop_key(record_path, "experiment")
    params_file = tmp_path / "params.yaml"
    write_params(
        params_file,
        grid={name: list(value) for name, value in params.grid.__dict__.items()},
        repeats={"models": [], "seeds": []},
    )
    results = tmp_path / "results"
    results.mkdir()
    (results / "leaderboard.csv").write_text("earlier results\n")
    before = hashes(results)
    line = one_line(*run_main("pipeline.results.aggregate", "--params", str(params_file), "--models", str(models),
                              "--evaluation", str(evaluation), "--out", str(results)))  # fmt: skip
    assert line.startswith(f"error: {record_path}: lacks the key 'experiment'")
    assert hashes(results) == before and leftovers(tmp_path) == []


def _set(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _rows(path: Path, keep: int) -> None:
    path.write_text("".join(path.read_text().splitlines(keepends=True)[: keep + 1]))


def _blank_column(path: Path, column: str) -> None:
    frame = pd.read_csv(path)
    frame[column] = ""
    frame.to_csv(path, index=False)


RUN = "lesion_a-unet-resnet18-random"


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (lambda m, e: _set(e / RUN / "metrics.json", dice="abc"), "metrics.json", "'dice' is 'abc': expected a number"),
        (lambda m, e: _set(e / RUN / "metrics.json", dice="0.99"), "metrics.json",
         "'dice' is '0.99': expected a number"),
        (lambda m, e: _set(e / RUN / "metrics.json", dice=float("nan")), "metrics.json",
         "'dice' is nan: expected a finite number"),
        (lambda m, e: _set(m / RUN / "train.json", best_epoch="six"), "train.json",
         "'best_epoch' is 'six': expected a whole number"),
        (lambda m, e: _set(m / RUN / "train.json", checkpoint="x"), "train.json",
         "'checkpoint' is 'x': expected a mapping of keys to values"),
        (lambda m, e: _rows(e / RUN / "volumes.csv", 3), "volumes.csv", "lacks the test volume 4.nii.gz (3 of 9 rows)"),
        (lambda m, e: _blank_column(e / RUN / "volumes.csv", "predicted_voxels"), "volumes.csv",
         "row 2, column 'predicted_voxels' is None: expected a whole number"),
    ],
)  # fmt: skip
def test_aggregate_refuses_records_of_the_wrong_type_naming_file_field_and_value(tmp_path, damage, file, message):
    """A Dice of 'abc', "0.99" or NaN, best_epoch 'six', a string where a mapping belongs, 3 of 9 volume rows, an
    empty voxel count: each was a traceback (or a silent wrong number); now one line."""
    from tests.test_aggregate import _params, _records

    params = _params()
    models, evaluation = _records(tmp_path, params)
    damage(models, evaluation)
    params_file = write_params(tmp_path / "params.yaml", grid={k: list(v) for k, v in params.grid.__dict__.items()},
                               repeats={"models": [], "seeds": []})  # fmt: skip
    results = tmp_path / "results"
    results.mkdir()
    (results / "leaderboard.csv").write_text("earlier results\n")
    before = hashes(results)
    line = one_line(*run_main("pipeline.results.aggregate", "--params", str(params_file), "--models", str(models),
                              "--evaluation", str(evaluation), "--out", str(results)))  # fmt: skip
    assert line.startswith(f"error: {tmp_path}/") and f"{RUN}/{file}: " in line and message in line, line
    assert hashes(results) == before and leftovers(tmp_path) == []


def test_evaluate_refuses_a_voxel_size_given_as_text(tmp_path, params_file, prepared):
    copy = Path(shutil.copytree(prepared, tmp_path / "prepared"))
    meta = json.loads((copy / "meta.json").read_text())
    meta["volumes"][0]["spacing_mm"] = ["5", "1", "1"]
    (copy / "meta.json").write_text(json.dumps(meta))
    line = one_line(*_evaluate(tmp_path, params_file, copy))
    assert line.startswith(f"error: {copy / 'meta.json'}: gives volume 1 the spacing ['5', '1', '1']; expected 3")


# ---------------------------------------------------------------- publish


def test_publish_to_a_path_that_is_a_file(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    assert one_line(*run_main("pipeline.site.publish", str(target))) == (
        f"error: {target}: is a file; give the folder a web server serves"
    )
    assert one_line(*run_main("pipeline.site.publish", "--hub", str(target))) == (
        f"error: {target}: is a file; give a folder for the hub export"
    )
    assert target.read_text() == "not a folder"


@pytest.mark.slow  # a fresh interpreter (torch) or git and dvc processes: make test runs it
def test_publish_to_a_broken_remote_says_why_not_dvcs_banner(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    for command in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(command, cwd=project, check=True, env=env)
    (project / "data.txt").write_text("a tracked file\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the remote's folder should be")
    for command in ([str(BIN / "dvc"), "add", "-q", "data.txt"],
                    [str(BIN / "dvc"), "remote", "add", "-d", "storage", str(blocker / "store")]):  # fmt: skip
        subprocess.run(command, cwd=project, check=True, env=env, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "pipeline.site.publish", str(tmp_path / "www")], cwd=project,
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    line = error_line(result)
    assert line.startswith(f"error: dvc push to 'storage' ({blocker / 'store'}) failed: ")
    assert "Not a directory" in line and "Having any troubles" not in result.stderr.splitlines()[-1]


# ---------------------------------------------------------------- site_build


def test_site_build_refuses_a_leaderboard_number_that_is_text(fixture_copy, tmp_path):
    results, figures = fixture_copy
    board = pd.read_csv(results / "leaderboard.csv", dtype=str)
    board.loc[3, "dice"] = "abc"
    board.to_csv(results / "leaderboard.csv", index=False)
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("the previous site")
    before = hashes(public)
    line = one_line(*run_main("pipeline.site.build", "--results", str(results), "--figures", str(figures),
                              "--docs", str(tmp_path / "docs"), "--out", str(public)))  # fmt: skip
    assert line == (f"error: {results / 'leaderboard.csv'}: row 5, column 'dice' is 'abc': expected a number; rerun "
                    "the aggregate stage (`dvc repro aggregate`)")  # fmt: skip
    assert hashes(public) == before


@pytest.mark.parametrize(
    ("file", "key"),
    [("lung-unet-resnet18-random/metrics.json", "dice"), ("summary.json", "leaders")],
)
def test_site_build_with_a_key_missing_from_the_results(fixture_copy, tmp_path, file, key):
    results, figures = fixture_copy
    path = results / file
    drop_key(path, key)
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("the previous site")
    before = hashes(public)
    line = one_line(*run_main("pipeline.site.build", "--results", str(results), "--figures", str(figures),
                              "--docs", str(tmp_path / "docs"), "--out", str(public)))  # fmt: skip
    assert line.startswith(f"error: {path}: lacks the key '{key}'")
    assert hashes(public) == before


# ---------------------------------------------------------------- submissions: untrusted input (round 4)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "http://[::1",
        "https://x.org/\rx",
        "https://x.org/ x",
        "//x.org/page",
        "http://x.org:99999/",
    ],
)
def test_one_url_rule_refuses_every_address_a_page_must_not_link_without_raising(url):
    from pipeline.core import submissions

    assert submissions.url_problem(url) != ""
    assert submissions.url_problem("https://example.org/paper?id=1") == ""
    with pytest.raises(submissions.PipelineError, match=r"expected an http\(s\) address"):
        submissions.check_url("url", url)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html;base64,PHNjcmlwdD4=", "http://[::1"])
def test_site_build_refuses_a_script_address_in_a_results_record(fixture_copy, tmp_path, url):
    """A results record edited by hand (metadata.url of a submission) passes the same rule as `submit`'s flags."""
    results, figures = fixture_copy
    path = results / "fixture-submission" / "metrics.json"
    record = json.loads(path.read_text())
    record["metadata"]["url"] = url
    path.write_text(json.dumps(record))
    code, stderr, public = _build_site(results, figures, tmp_path)
    line = one_line(code, stderr)
    assert line.startswith(f"error: {path}:") and "http(s)" in line
    assert (public / "index.html").read_text() == "the previous site"


@pytest.mark.parametrize("name", ["index", "search", "models", "try"])
def test_a_submission_cannot_take_the_name_of_a_page_the_site_writes(tmp_path, name):
    line = one_line(*run_main("pipeline.submit", name, "--experiment", "lung", "--predictions", str(tmp_path),
                              "--dry-run", cwd=tmp_path))  # fmt: skip
    assert line == f"error: {name!r} is the name of a page or file of the site; choose another submission name"


def test_publish_takes_only_the_payload_a_submission_declares_never_a_stray_dvc_record(tmp_path):
    """A `.dvc` file dropped into a submission folder, naming the md5 of the test data, publishes nothing."""
    from pipeline.core import submissions
    from pipeline.site.publish import declared_payloads, published_objects

    folder = tmp_path / "submissions" / "honest"
    folder.mkdir(parents=True)
    record = {"name": "honest", "experiment": "lung", "kind": "predictions", "files": {"1.nii.gz": "a" * 64},
              "data_source": "phantom", "profile": "demo", "test_set": "b" * 64, "submitted": "2026-12-01",
              "params_m": None, "title": "", "authors": "", "description": "", "training_data": "", "url": "",
              "paper": "", "preprocessing": None}  # fmt: skip
    (folder / submissions.RECORD).write_text(json.dumps(record))
    payload, data = "12" + "3" * 30, "de" + "f" * 30
    (folder / "predictions.dvc").write_text(yaml.safe_dump({"outs": [{"md5": payload, "path": "predictions"}]}))
    (folder / "evil.dvc").write_text(yaml.safe_dump({"outs": [{"md5": data + ".dir", "path": "../../data/raw"}]}))
    assert declared_payloads(tmp_path / "submissions") == [folder / "predictions.dvc"]
    objects = published_objects([], lock=tmp_path / "dvc.lock", cache=tmp_path / "cache",
                                submissions=tmp_path / "submissions")  # fmt: skip
    assert objects == [f"files/md5/12/{'3' * 30}"]


def _build_site(results: Path, figures: Path, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    public = tmp_path / "public"
    public.mkdir(exist_ok=True)
    (public / "index.html").write_text("the previous site")
    code, stderr = run_main("pipeline.site.build", "--results", str(results), "--figures", str(figures),
                            "--docs", str(tmp_path / "docs"), "--out", str(public), *extra)  # fmt: skip
    return code, stderr, public


@pytest.mark.parametrize(
    ("script", "content"),
    [
        ("fixture-submission--1.js", "{payload}alert(document.cookie);\n"),  # a statement appended
        ("fixture-submission--1.js", "alert(1);\n"),
        ("other-model--1.js", "{payload}"),
    ],  # a script under another model's name
)
def test_a_stored_viewer_script_is_data_never_code(fixture_copy, tmp_path, script, content):
    """Stored viewer scripts are parsed as the score stage writes them and written afresh; anything else is
    refused in one line and the site is left as it was."""

    results, figures = fixture_copy
    folder = tmp_path / "scores" / "fixture-submission" / "viewer"
    folder.mkdir(parents=True)
    payload = as_script(script.removesuffix(".js"), gzip.compress(b"nifti"))
    (folder / script).write_text(content.format(payload=payload))
    code, stderr, public = _build_site(results, figures, tmp_path, "--scores", str(tmp_path / "scores"))
    line = one_line(code, stderr)
    assert line.startswith(f"error: {folder / script}: is not a viewer script the score stage writes")
    assert (public / "index.html").read_text() == "the previous site"


@pytest.mark.slow
def test_a_submissions_ct_script_never_replaces_the_grids(fixture_copy, tmp_path):

    results, figures = fixture_copy
    folder = tmp_path / "scores" / "fixture-submission" / "viewer"
    folder.mkdir(parents=True)
    (folder / "ct-1.js").write_text(as_script("ct-1", gzip.compress(b"another ct")))
    labels = as_script("fixture-submission--1", gzip.compress(b"labels"))
    (folder / "fixture-submission--1.js").write_text(labels)
    code, stderr, public = _build_site(results, figures, tmp_path, "--scores", str(tmp_path / "scores"))
    assert code == 0, stderr
    assert (public / "viewer" / "ct-1.js").read_text() == (figures / "viewer" / "ct-1.js").read_text()
    assert (public / "viewer" / "fixture-submission--1.js").read_text() == labels


@pytest.mark.parametrize(
    ("field", "value"),
    [("rank", "first"), ("tier", "1"), ("gflops", "many"), ("params_m", "12"), ("speed_device", 5), ("viewer", "x")],
)
def test_site_build_refuses_a_field_a_page_formats_given_with_the_wrong_type(fixture_copy, tmp_path, field, value):
    results, figures = fixture_copy
    path = results / "lung-unet-resnet18-random" / "metrics.json"
    record = json.loads(path.read_text())
    record[field] = value
    path.write_text(json.dumps(record))
    code, stderr, public = _build_site(results, figures, tmp_path)
    assert one_line(code, stderr).startswith(f"error: {path}: '{field}' is ")
    assert (public / "index.html").read_text() == "the previous site"


def test_publish_site_refuses_a_folder_of_other_files_and_a_symbolic_link(tmp_path):
    from pipeline.site.publish import PUBLISHED_MARK, check_site_folder

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(PipelineError, match="holds files that no earlier publish wrote"):
        check_site_folder(mine)
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(PipelineError, match="is a symbolic link"):
        check_site_folder(link)
    assert (mine / "thesis.tex").read_text() == "years of work"
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / PUBLISHED_MARK).write_text("")
    (earlier / "index.html").write_text("old site")
    check_site_folder(earlier)  # a previous publish is replaced
    check_site_folder(tmp_path / "new")
    code, stderr = run_main("pipeline.site.publish", "--site", str(mine), "--url", "https://x.org/bench")
    assert one_line(code, stderr).startswith(f"error: {mine}: holds files that no earlier publish wrote")
    assert (mine / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("url", ["https://x.org/\rx", "https://x.org/\x00", "http://[::1"])
def test_publish_refuses_an_address_with_a_control_character_or_malformed(tmp_path, url):
    code, stderr = run_main("pipeline.site.publish", "--site", str(tmp_path / "out"), "--url", url)
    assert "expected an http(s) address" in one_line(code, stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"encoder_name": "tu-hf-hub:timm/resnet18.a1_in1k"}, "not in segmentation-models-pytorch's registry"),
        ({"encoder_name": "tu-local-dir:/etc"}, "not in segmentation-models-pytorch's registry"),
        ({"encoder_name": ["resnet18"]}, "gives encoder_name as list"),
        ({"pretrained_url": "https://x.org/w"}, "has the key 'pretrained_url', which Unet does not take"),
    ],
)
def test_a_config_json_names_only_registered_encoders_and_the_architectures_keys(tmp_path, model_folder, scan,
                                                                                 config, message):  # fmt: skip
    folder = Path(shutil.copytree(model_folder, tmp_path / "model"))
    _edit_json(folder / "config.json", **config)
    line = one_line(*_predict(folder, scan, tmp_path / "mask.nii.gz"))
    assert message in line and str(folder / "config.json") in line


def test_weights_of_the_wrong_shape_are_named_as_such_in_one_line(tmp_path, model_folder, scan):
    from safetensors.torch import load_file, save_file

    folder = Path(shutil.copytree(model_folder, tmp_path / "model"))
    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = torch.zeros(*[n + 1 for n in weights[name].shape])
    save_file(weights, folder / "model.safetensors")
    code, stderr = _predict(folder, scan, tmp_path / "mask.nii.gz")
    assert one_line(code, stderr).endswith(
        f"holds {name} with shape {tuple(weights[name].shape)}, where the model "
        f"of config.json has {tuple(n - 1 for n in weights[name].shape)}"
    )


def test_a_preprocessing_json_that_is_a_fifo_is_refused_not_read(tmp_path, model_folder, scan):
    folder = Path(shutil.copytree(model_folder, tmp_path / "model"))
    (folder / "preprocessing.json").unlink()
    os.mkfifo(folder / "preprocessing.json")
    line = one_line(*_predict(folder, scan, tmp_path / "mask.nii.gz"))
    assert (
        line == f"error: {folder / 'preprocessing.json'}: is not a regular file (a pipe, device or socket?); "
        "expected a JSON file"
    )


def test_json_nested_200000_deep_is_one_line(tmp_path):
    from pipeline.core.outputs import read_json

    path = tmp_path / "config.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(PipelineError, match="is nested too deeply"):
        read_json(path, "")


def test_a_compressed_mask_claiming_another_shape_is_refused_before_decompression(tmp_path):
    """A 64 MB volume of zeros gzips to about 64 KB: its header's shape is compared with the scan's first."""
    path = tmp_path / "bomb.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((400, 400, 400), dtype=np.uint8), np.eye(4)), path)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(PipelineError, match=r"has shape \(400, 400, 400\); its scan has \(16, 16, 4\)"):
        rawdata.read_array(path, (16, 16, 4))


@pytest.mark.parametrize("volume", ["²", "9" * 5000, "\uff11"])  # superscript 2, 5000 digits, a full-width 1
def test_a_case_map_volume_must_be_ascii_digits(tmp_path, volume):
    from pipeline.data import predictions

    path = tmp_path / "map.csv"
    path.write_text(f"case,volume\ncase_a,{volume}\n")
    with pytest.raises(PipelineError, match="is not a test volume"):
        predictions.read_case_map(path, ["1.nii.gz", "2.nii.gz"])


def test_argparse_errors_are_the_projects_one_line():
    code, stderr = run_main("pipeline.submit", "just-a-name")
    assert (
        stderr.strip()
        == ("error: python -m pipeline.submit: the following arguments are required: --experiment (see --help)")
        and code == 2
    )


def test_an_onnx_graph_with_external_data_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from pipeline.model.onnx_network import OnnxNetwork

    weight = numpy_helper.from_array(np.ones((1, 1, 1, 1), dtype=np.float32), "w")
    tensor = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 1, 32, 32]) for name in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g", tensor[:1], tensor[1:], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "model.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
                    size_threshold=0)  # fmt: skip
    with pytest.raises(PipelineError, match="keeps weights in external data files"):
        OnnxNetwork(path)


def test_a_child_started_with_the_parent_death_signal_ends_with_its_parent(tmp_path):
    """What `submit` starts `dvc add` with: kill -9 of the parent leaves no child running under PID 1."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "from pipeline.core.errors import parent_death_signal\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=parent_death_signal)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    for _ in range(100):
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        import time

        time.sleep(0.05)
    alive = Path(f"/proc/{child}").exists() and "Z" not in Path(f"/proc/{child}/stat").read_text().split()[2]
    assert not alive


def test_an_onnx_graph_that_runs_for_ever_is_stopped_in_one_line(tmp_path, monkeypatch):
    """A Loop of 2^62 iterations: the watchdog stops it at the time limit (2 s here, 600 s in use)."""
    import time

    from onnx import TensorProto, helper

    from pipeline.model.onnx_network import OnnxNetwork

    shape = [1, 1, 32, 32]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, shape)],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )  # fmt: skip
    constants = [helper.make_tensor("trip", TensorProto.INT64, [], [2**62]),
                 helper.make_tensor("cond", TensorProto.BOOL, [], [True])]  # fmt: skip
    graph = helper.make_graph([helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], constants)  # fmt: skip
    path = tmp_path / "model.onnx"
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    monkeypatch.setattr(OnnxNetwork, "time_limit_s", 0.5)
    started = time.perf_counter()
    with pytest.raises(PipelineError, match=r"ran past the time limit of 0\.5 s"):
        OnnxNetwork(path).check(32)
    assert time.perf_counter() - started < 30


def test_a_submitted_model_that_computes_infinities_is_refused_not_scored_as_empty(tmp_path, model_folder):
    """Weights multiplied by 1e30 are finite and load; the network's outputs are not: refused, as ONNX's are."""
    from safetensors.torch import load_file, save_file

    from pipeline.evaluation import external
    from pipeline.model import checkpoints

    folder = Path(shutil.copytree(model_folder, tmp_path / "model"))
    tensors = load_file(folder / "model.safetensors")
    save_file({name: t * 1e30 if t.dtype.is_floating_point and name.endswith(".weight") else t
               for name, t in tensors.items()}, str(folder / "model.safetensors"))  # fmt: skip
    model, _ = checkpoints.load(folder)
    with pytest.raises(PipelineError, match="computes non-finite values"):
        external._probabilities(model, np.random.default_rng(0).normal(size=(2, 32, 32)).astype(np.float32))


def test_a_stage_started_by_dvc_ends_when_dvc_is_killed(tmp_path):
    """kill -9 of `dvc repro` used to leave its running stage (the score stage, say) working under PID 1."""
    import time

    dvc = tmp_path / "dvc"  # a parent that is `dvc` by name, as /proc/<pid>/cmdline shows it
    dvc.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys, time\n"
        "stage = subprocess.Popen([sys.executable, '-c', 'import time; from pipeline.core.errors import run_stage; "
        "run_stage(lambda: time.sleep(60))'])\n"
        "print(stage.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    dvc.chmod(0o755)
    parent = subprocess.Popen([str(dvc)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    stage = int(parent.stdout.readline())
    time.sleep(1.0)  # the stage has started and asked to die with its parent
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()

    def running() -> bool:
        stat = Path(f"/proc/{stage}/stat")
        return stat.exists() and stat.read_text().split()[2] != "Z"

    for _ in range(100):
        if not running():
            break
        time.sleep(0.05)
    assert not running()


@pytest.mark.slow  # a fresh interpreter (torch) or git and dvc processes: make test runs it
def test_publish_refuses_a_checkout_whose_published_commands_would_fail(tmp_path):
    """A page's `dvc get` resolves the committed dvc.lock against the committed default remote: publish refuses
    while either is not the one published, in one line and with nothing written; --set-remote sets and
    commits the remote."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}  # fmt: skip

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True)

    git("init", "-q")
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "params.yaml").write_text("profile: demo\n")
    url = "https://you.example.org/bench"

    def published() -> str:
        code, stderr = run_main("pipeline.site.publish", "--site", "out", "--url", url, cwd=tmp_path)
        return one_line(code, stderr)

    assert published().startswith("error: dvc.lock: not committed")
    git("add", "-A")
    git("commit", "-qm", "state")
    assert published() == (
        f"error: .dvc/config: the default DVC remote is not set, not {url}/dvcstore, the "
        "address readers will get; pass --set-remote to set it and commit .dvc/config"
    )
    assert not (tmp_path / "out").exists()
    _, stderr = run_main("pipeline.site.publish", "--site", "out", "--url", url, "--set-remote", cwd=tmp_path)
    assert "default DVC remote" not in stderr and "not committed" not in stderr  # past the checks
    assert f"url = {url}/dvcstore" in git("show", "HEAD:.dvc/config").stdout


def test_an_onnx_graph_that_asks_for_too_much_memory_fails_at_once_in_one_line(tmp_path):
    """A ConstantOfShape of 49,000 x 49,000 floats (9.6 GB) would fill the memory of the scoring machine: the
    graph's tensors come from an arena capped at onnx_network.MEMORY_LIMIT (8 GiB), so it fails before writing."""
    import time

    import onnx
    from onnx import TensorProto, helper

    from pipeline.model import onnx_network

    shape = [1, 1, 32, 32]
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [1.0])
    nodes = [helper.make_node("ConstantOfShape", ["size"], ["big"], value=value),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=1),
             helper.make_node("Add", ["x", "total"], ["y"])]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                              [helper.make_tensor("size", TensorProto.INT64, [2], [49_000, 49_000])])  # fmt: skip
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    started = time.perf_counter()
    with pytest.raises(PipelineError, match="asked for more memory than the 8 GiB"):
        onnx_network.OnnxNetwork(path).check(32)
    assert time.perf_counter() - started < 10
