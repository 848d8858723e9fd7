"""The house rules that keep the code navigable: layers, derived dependencies, fingerprints that follow the code.

- every DVC stage's code deps cover every project module its command imports (walked from the source, lazy
  imports included), so an edit never leaves a stale result that `dvc status` calls current;
- the training fingerprint (models/train_inputs.json) changes with any module training imports, and only with
  a change to what the code does: comments, layout and docstrings retrain nothing;
- the evaluate stage evaluates again after a change to any module it imports;
- the light layers import no torch.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.fingerprint import code_fingerprint, module_file, project_modules
from pipeline.core.paths import TRAIN_INPUTS
from pipeline.training.inputs import TRAINING
from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _stage_module(command: str) -> str:
    match = re.match(r"python -m ([\w.]+)", command)
    assert match, f"not a `python -m` stage command: {command}"
    return match.group(1)


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_module_a_stage_imports_is_one_of_its_deps(stage):
    spec = STAGES[stage]
    deps = [dep if isinstance(dep, str) else next(iter(dep)) for dep in spec.get("deps", [])]
    module = _stage_module(spec["cmd"])
    files = [str(module_file(name).relative_to(ROOT)) for name in project_modules(module)]
    if module == TRAINING:  # the train cells' one dep, models/train_inputs.json, fingerprints their code
        assert deps == [str(TRAIN_INPUTS)], f"{stage}: a train cell depends on {TRAIN_INPUTS} alone"
        return
    uncovered = [path for path in files if not _covered(path, deps)]
    assert not uncovered, f"stage {stage} imports {uncovered} but no dep covers them"


def _declared_covers(declared: set[str], key: str) -> bool:
    return key in declared or key.split(".")[0] in declared


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_lists_exactly_the_params_its_code_reads(stage):
    """dvc.yaml's `params:` derived like the code deps: a key the stage's code (its imports included) reads and
    dvc.yaml does not list would leave `dvc status` clean after a change; a listed key it never reads reruns it
    for nothing."""
    from pipeline.grid.params_read import stage_params

    spec = STAGES[stage]
    module = _stage_module(spec["cmd"])
    declared = set(spec.get("params", []))
    if module == TRAINING:  # the train cells read params through models/train_inputs.json, which fingerprints them
        assert not declared, f"{stage}: a train cell's params reach it through {TRAIN_INPUTS}"
        return
    read = stage_params(module)
    missing = sorted(key for key in read if not _declared_covers(declared, key))
    assert not missing, f"stage {stage} reads {missing} but dvc.yaml does not list them"
    unread = sorted(key for key in declared if not any(_declared_covers({key}, r) or r == key.split(".")[0]
                                                       for r in read))  # fmt: skip
    assert not unread, f"stage {stage} lists {unread} in dvc.yaml but its code never reads them"


def test_the_params_walk_reads_named_sections_handed_sections_and_helpers():
    from pipeline.grid.params_read import keys_in

    source = (
        "from pipeline.core.config import EvaluateParams, load_params\n"
        "def f(params, evaluate: EvaluateParams):\n"
        "    grid = load_params('p').grid\n"
        "    return params.ranking.permutations, evaluate.threshold, grid.encoders, params.runs(), params.speed\n"
        "def g(results):\n"
        "    return results.grid  # not the params: never counted\n"
    )
    assert keys_in(source) == {"ranking.permutations", "evaluate.threshold", "grid.encoders", "grid", "repeats",
                               "speed"}  # fmt: skip


def test_the_import_walk_finds_lazy_and_package_imports(tmp_path):
    package = tmp_path / "pipeline"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("def f():\n    from pipeline.sub import b\n    return b\n")
    (package / "sub" / "b.py").write_text("from pipeline.c import VALUE\nimport numpy\n")
    (package / "c.py").write_text("VALUE = 1\n")
    (package / "unused.py").write_text("")
    assert project_modules("pipeline.sub.a", tmp_path) == [
        "pipeline", "pipeline.c", "pipeline.sub", "pipeline.sub.a", "pipeline.sub.b",
    ]  # fmt: skip


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A scratch copy of the project's code, to edit."""
    shutil.copytree(ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_any_change_to_what_training_imports_changes_the_training_fingerprint(scratch):
    before = code_fingerprint(TRAINING, scratch)
    modules = project_modules(TRAINING, scratch)
    assert {"pipeline.model.checkpoints", "pipeline.core.config", "pipeline.core.outputs"} <= set(modules)
    for name in modules:
        path = module_file(name, scratch)
        original = path.read_text()
        _append(path, "\n_PROBE = 1\n")
        assert code_fingerprint(TRAINING, scratch) != before, f"an edit of {name} left the fingerprint as it was"
        path.write_text(original)
    assert code_fingerprint(TRAINING, scratch) == before
    outside = module_file("pipeline.site.charts", scratch)
    _append(outside, "\n_PROBE = 1\n")
    assert code_fingerprint(TRAINING, scratch) == before  # the site is not part of training


def test_comments_layout_and_docstrings_retrain_nothing(scratch):
    before = code_fingerprint(TRAINING, scratch)
    path = module_file("pipeline.model.checkpoints", scratch)
    text = path.read_text()
    text = text.replace('"""Trained models on disk', '"""Model folders on disk', 1)  # the module docstring
    text = text.replace("import json\n", "import json  # a comment\n\n\n", 1)  # a comment and blank lines
    signature = "def save(state_dict: dict, cell: Cell, preprocess: dict, folder: Path) -> dict:"
    text = text.replace(signature, signature.replace("(", "(\n    ", 1).replace(") ->", "\n) ->"))
    path.write_text(text)
    assert code_fingerprint(TRAINING, scratch) == before
    path.write_text(text.replace("(folder / WEIGHTS).chmod(0o644)", "(folder / WEIGHTS).chmod(0o600)"))
    assert code_fingerprint(TRAINING, scratch) != before


def _run(scratch: Path, *args: str) -> subprocess.CompletedProcess:
    """A stage of the scratch copy, run there as dvc.yaml runs it (its own code, not the project's)."""
    result = subprocess.run([sys.executable, "-m", *args], cwd=scratch, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def test_the_train_inputs_stage_writes_a_new_fingerprint_after_an_edit_of_what_training_imports(
    scratch, tiny_params_file
):
    out = scratch / "models" / "train_inputs.json"
    command = ("pipeline.training.inputs", "--params", str(tiny_params_file), "--out", str(out))
    _run(scratch, *command)
    first = json.loads(out.read_text())
    _append(module_file("pipeline.core.config", scratch), "\n\ndef _probe():\n    return 1\n")
    _run(scratch, *command)
    assert json.loads(out.read_text())["code"] != first["code"]


@pytest.mark.slow
def test_evaluate_evaluates_again_after_an_edit_of_what_it_imports(scratch, tiny_project):
    project, cell = tiny_project, "lung-pspnet-resnet18-random"
    # one run of the tiny grid: what is kept or evaluated again does not depend on how many there are
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["grid"] = {**params["grid"], "experiments": ["lung"], "architectures": ["pspnet"]}
    params["repeats"] = {"models": [], "seeds": []}
    (scratch / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    evaluation = scratch / "evaluation"
    shutil.copytree(project / "evaluation" / cell, evaluation / cell)
    command = ("pipeline.evaluation.evaluate", "--params", str(scratch / "params.yaml"), "--prepared",
               str(project / "data" / "prepared"), "--models", str(project / "models"),
               "--out", str(evaluation))  # fmt: skip
    assert "evaluate: 0 evaluated, 1 reused" in _run(scratch, *command).stdout
    _append(module_file("pipeline.core.config", scratch), "\n\ndef _probe():\n    return 1\n")
    assert "evaluate: 1 evaluated, 0 reused" in _run(scratch, *command).stdout


LIGHT = ("pipeline.results.aggregate", "pipeline.site.build", "pipeline.site.publish", "pipeline.grid.runner",
         "pipeline.grid.repeats", "pipeline.training.inputs", "pipeline.core.profiles")  # fmt: skip


def test_the_light_layers_import_no_torch():
    heavy = ("torch", "monai", "segmentation_models_pytorch")
    probe = f"import sys; import {', '.join(LIGHT)}; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_package_holds_more_than_twelve_modules():
    packages = [path for path in (ROOT / "pipeline").iterdir() if path.is_dir() and path.name != "__pycache__"]
    for package in sorted(packages):
        modules = [path for path in package.glob("*.py") if path.name not in ("__init__.py", "__main__.py")]
        assert len(modules) <= 12, f"{package.name}/ holds {len(modules)} modules"
