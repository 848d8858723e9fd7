"""Docs cannot drift: every stage and parameter is documented, and the README's commands are what CI runs."""

import re

import yaml

from tests.conftest import ROOT

REFERENCE = (ROOT / "site" / "reference.md").read_text()
README = (ROOT / "README.md").read_text()


def _leaf_keys(mapping: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        keys += _leaf_keys(value, f"{name}.") if isinstance(value, dict) else [name]
    return keys


def _quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```[^\n]*\n(.*?)```", section, flags=re.S)]


def test_every_stage_is_documented():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert f"### `{name}`" in REFERENCE, f"stage {name} is missing from site/reference.md"
        assert " ".join(stage["cmd"].split()[:3]) in REFERENCE  # python -m pipeline.<module>
        assert f"`{name}`" in README


def test_every_parameter_is_documented():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in _leaf_keys(params):
        assert f"| `{key}` |" in REFERENCE, f"params key {key} is missing from site/reference.md"


def test_every_profile_is_documented():
    for path in (ROOT / "conf" / "profile").glob("*.yaml"):
        assert f"| `{path.stem}` |" in REFERENCE
        assert f"| `{path.stem}` |" in README


def test_quickstart_is_two_single_commands_and_ci_runs_the_second():
    commands = _quickstart_commands()
    assert len(commands) == 2 and all("\n" not in command for command in commands)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert commands[1] in ci


def _documented_columns(table_header: str) -> set[str]:
    section = REFERENCE.split(table_header, 1)[1].split("\n\n", 1)[0]
    return {name for row in section.splitlines()[2:] for name in re.findall(r"`([a-z0-9_]+)`", row.split("|")[1])}


def test_every_results_column_is_documented():
    from pipeline.results.aggregate import COLUMNS, RECIPE_COLUMNS

    assert set(COLUMNS) <= _documented_columns("| leaderboard column | meaning |")
    assert set(RECIPE_COLUMNS) <= _documented_columns("| recipes column | meaning |")
