"""Evaluation does one model's work per changed model: each result is kept with the key of what it depends on."""

import json
import re

import pytest
import yaml
from safetensors.torch import load_file, save_file

from pipeline import checkpoints, profiles, train
from pipeline.cells import Run, parse_cell_id
from pipeline.config import parse_params
from pipeline.preprocess import preprocess
from tests.conftest import ROOT, run_in_process

CELLS = ("lung-unet-resnet18-random", "lung-pspnet-resnet18-random")


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_raw, tiny_params):
    """Prepared data, two trained tiny models (one epoch) and the params file that lists them."""
    root = tmp_path_factory.mktemp("evaluate")
    preprocess(tiny_raw, root / "prepared", tiny_params.preprocess, tiny_params.profile)
    raw = profiles.compose("tiny", ROOT / "conf")
    raw["grid"].update(experiments=["lung"])
    raw["train"].update(epochs=1, device="cpu")
    raw["evaluate"].update(workers=1, bootstrap_samples=50)
    params = parse_params(raw)
    for cell in CELLS:
        train.run(Run(parse_cell_id(cell)), params, root / "prepared", root / "models" / cell, root / "state")
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


def _evaluate(root, params="params.yaml") -> tuple[int, int]:
    code, out, err = run_in_process("pipeline.evaluate", "--params", str(root / params), "--prepared",
                                    str(root / "prepared"), "--models", str(root / "models"), "--out",
                                    str(root / "evaluation"))  # fmt: skip
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    match = re.match(r"evaluate: (\d+) evaluated, (\d+) reused", last)
    assert match, last
    return int(match.group(1)), int(match.group(2))


def _results(root) -> dict:
    return {cell: json.loads((root / "evaluation" / cell / "metrics.json").read_text()) for cell in CELLS}


def test_only_what_changed_is_evaluated_and_the_results_equal_a_full_evaluation(project):
    assert _evaluate(project) == (2, 0)
    assert _evaluate(project) == (0, 2)  # nothing changed: every result is reused
    # A retrained model whose weights differ (here: nudged) is evaluated again, alone.
    folder = project / "models" / CELLS[0]
    weights = load_file(folder / checkpoints.WEIGHTS)
    name = next(key for key in weights if key.endswith("weight") and weights[key].dtype.is_floating_point)
    weights[name] = weights[name] * 1.01
    save_file(weights, str(folder / checkpoints.WEIGHTS), metadata={"format": "pt"})
    record = json.loads((folder / "train.json").read_text())
    record["checkpoint"] = checkpoints.file_digests(folder / checkpoints.WEIGHTS)
    (folder / "train.json").write_text(json.dumps(record))
    assert _evaluate(project) == (1, 1)
    incremental = _results(project)
    for cell in CELLS:  # a full evaluation from scratch gives the same numbers
        (project / "evaluation" / cell / "metrics.json").unlink()
    assert _evaluate(project) == (2, 0)
    assert _results(project) == incremental


def test_a_change_to_the_evaluation_params_evaluates_every_model(project):
    _evaluate(project)
    raw = yaml.safe_load((project / "params.yaml").read_text())
    raw["evaluate"]["nsd_tolerance_mm_lung"] = 2.0
    (project / "other.yaml").write_text(yaml.safe_dump(raw))
    assert _evaluate(project, "other.yaml") == (2, 0)
    raw["evaluate"]["workers"] = 2  # how fast, not what: no new evaluation
    (project / "other.yaml").write_text(yaml.safe_dump(raw))
    assert _evaluate(project, "other.yaml") == (0, 2)


def test_a_model_whose_weights_do_not_match_its_record_is_refused(project, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(project / "models", models)
    (models / CELLS[1] / checkpoints.WEIGHTS).write_bytes(b"")
    code, _, err = run_in_process("pipeline.evaluate", "--params", str(project / "params.yaml"), "--prepared",
                                  str(project / "prepared"), "--models", str(models), "--out",
                                  str(tmp_path / "evaluation"))  # fmt: skip
    assert code == 2 and "is not the checkpoint its train.json describes" in err
