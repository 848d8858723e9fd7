import copy
import re

import pytest
import yaml

from pipeline.core import profiles
from pipeline.core.config import ConfigError, load_params, parse_params
from tests.conftest import ROOT, run_here


@pytest.fixture
def raw_params():
    return profiles.compose("tiny", ROOT / "conf")


def test_every_profile_composes_to_valid_params():
    for name in profiles.available(ROOT / "conf"):
        params = parse_params(profiles.compose(name, ROOT / "conf"))
        assert params.profile == name


def test_paper_profile_is_the_protocol():
    paper = parse_params(profiles.compose("paper", ROOT / "conf"))
    assert paper.data.source == "download"
    assert paper.preprocess.size == 512
    assert (paper.preprocess.hu_offset, paper.preprocess.hu_scale) == (500.0, 500.0)
    assert paper.preprocess.train_slices == 80


def test_committed_params_are_the_demo_profile():
    """params.yaml is generated: it must be what `dvc exp run -S profile=demo` would write."""
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert committed == profiles.compose("demo", ROOT / "conf")


def test_the_demo_repeats_every_model_of_its_grid():
    """The recipe ranking of the demo is over every model: its repeats list is the grid, never a stale copy."""
    params = parse_params(profiles.compose("demo", ROOT / "conf"))
    assert sorted(params.repeats.models) == sorted(cell.id for cell in params.grid.cells())
    assert len(params.repeats.seeds) >= 2  # three runs each, with the main one


def test_unknown_profile_lists_choices():
    with pytest.raises(ConfigError, match="unknown profile 'huge'; valid choices: demo, paper"):
        profiles.compose("huge", ROOT / "conf")


def test_unknown_key_names_it_and_lists_valid_keys(raw_params):
    raw_params["preprocess"]["sise"] = 64
    with pytest.raises(ConfigError, match=r"unknown key 'sise' in section 'preprocess'; valid keys: size"):
        parse_params(raw_params)


def test_unknown_top_level_section(raw_params):
    raw_params["trian"] = {}
    with pytest.raises(ConfigError, match="unknown key 'trian' in the top level; valid keys: profile, data"):
        parse_params(raw_params)


def test_missing_key(raw_params):
    del raw_params["data"]["phantom"]["seed"]
    with pytest.raises(ConfigError, match=re.escape("missing key 'seed' in section 'data.phantom'")):
        parse_params(raw_params)


def test_unknown_data_source_lists_choices(raw_params):
    raw_params["data"]["source"] = "kaggle"
    with pytest.raises(ConfigError, match=re.escape("'data.source' is 'kaggle'; valid choices: phantom, download")):
        parse_params(raw_params)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("preprocess", "size", "64", "must be of type int"),
        ("preprocess", "size", 64.0, "must be of type int"),
        ("preprocess", "size", True, "must be of type int"),
        ("preprocess", "hu_scale", "500", "must be of type float"),
    ],
)
def test_wrong_types_are_refused(raw_params, section, key, value, expected):
    raw_params[section][key] = value
    with pytest.raises(ConfigError, match=f"'{section}.{key}' {expected}"):
        parse_params(raw_params)


def test_int_is_accepted_where_a_float_is_expected(raw_params):
    raw_params["preprocess"]["hu_scale"] = 500
    assert parse_params(raw_params).preprocess.hu_scale == 500.0


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("preprocess", "size"), 100, "multiple of 32"),
        (("data", "phantom", "test_slices_min"), 0, "test_slices_min"),
        (("data", "download", "url"), "https://example.invalid/file", "placeholder"),
    ],
)
def test_values_out_of_range_are_refused(raw_params, path, value, expected):
    changed = copy.deepcopy(raw_params)
    section = changed
    for key in path[:-1]:
        section = section[key]
    section[path[-1]] = value
    with pytest.raises(ConfigError, match=expected):
        parse_params(changed)


def test_params_are_frozen(tiny_params):
    with pytest.raises(AttributeError):
        tiny_params.preprocess.size = 128


def test_load_params_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid YAML at line"):
        load_params(path)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "absent.yaml")


def test_stage_with_bad_params_prints_one_line_and_fails(tmp_path, raw_params):
    raw_params["data"]["source"] = "kaggle"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw_params))
    result = run_here("pipeline.data.fetch", "--params", str(path), "--out", str(tmp_path / "raw"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: 'data.source' is 'kaggle'; valid choices: phantom, download"
    ]
    assert not (tmp_path / "raw").exists()
