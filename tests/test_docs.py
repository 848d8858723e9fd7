"""Docs cannot drift: every stage and parameter is documented, and the README's commands are what CI runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_the_column_tables_of_the_reference_are_written_from_the_schema():
    """site/reference.md's column tables are the schema's (python -m pipeline.results.schema --write ...)."""
    from pipeline.results import schema

    assert schema.refreshed(REFERENCE) == REFERENCE, "run python -m pipeline.results.schema --write site/reference.md"
    for name, table in schema.tables().items():
        assert f"<!-- schema:{name} -->" in REFERENCE
        assert all(f"| `{field.name}` |" in REFERENCE for field in table)


# A module path or dotted name of the project, as text gives it (`pipeline/x/y.py`, `pipeline.x.y.name`).
DOTTED = re.compile(r"(?<![\w./-])pipeline(?:\.[A-Za-z_]\w*)+")
SOURCE_PATH = re.compile(r"(?<![\w./-])pipeline/[\w/]+\.py")


def _resolves(name: str) -> bool:
    """A module, or an attribute path inside one (``pipeline.results.ranking.tiers``)."""
    import importlib

    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_every_project_name_that_text_gives_resolves(fixture_docs):
    """Docstrings, comments, the README, the reference, the templates and the generated pages name modules
    and functions that exist: a module that moves takes its mentions with it."""
    texts = [path for folder in ("pipeline", "benchmarks", "tools") for path in (ROOT / folder).rglob("*.py")]
    texts += [ROOT / "README.md", ROOT / "dvc.yaml", ROOT / "Makefile", *(ROOT / "site").glob("*.md"),
              *(ROOT / "templates").rglob("*.j2"), *fixture_docs.rglob("*.md")]  # fmt: skip
    unresolved = set()
    for path in texts:
        text = path.read_text()
        unresolved |= {(str(path), m) for m in DOTTED.findall(text) if not _resolves(m.rstrip("."))}
        unresolved |= {(str(path), m) for m in SOURCE_PATH.findall(text) if not (ROOT / m).is_file()}
    assert not unresolved, f"names that point to nothing: {sorted(unresolved)[:10]}"


def test_the_readmes_way_to_add_a_package_runs_in_the_environment():
    """`uv pip install NAME` in the activated environment (which holds uv, not pip): here a package it already
    has, offline, so that nothing changes and nothing is downloaded."""
    assert "add a package with `uv pip install NAME`" in README
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "uv").exists():
        assert (bin_dir / "pip").exists()  # made with INSTALLER=pip, which the README names as the exception
        return
    # as the activated environment's shell finds it: `uv` on its PATH
    env = {**os.environ, "VIRTUAL_ENV": str(bin_dir.parent), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["uv", "pip", "install", "--offline", "tqdm"], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Checked 1 package" in result.stderr  # found installed: nothing fetched, nothing changed
