"""Which params a stage reads, found from its code: the same walk of its imports as its code deps
(pipeline.core.fingerprint), so that dvc.yaml's ``params:`` are derived, never kept by hand beside the code.

A params key is read where the code names it on the loaded params (``params.evaluate.confidence``), on a section
it was handed (``evaluate.threshold`` in a function whose argument is annotated ``EvaluateParams``), or through
the two helpers that read sections whole (``params.runs()``: ``grid`` and ``repeats``; a section passed on or
turned into a dict: the whole section). Like the code deps, this over-approximates: a module a stage imports may
read a key on a path the stage never takes, and such a key is listed too (a needless rerun, never a stale
result).

    python -m pipeline.grid.params_read pipeline.results.aggregate   # what that stage's code reads
"""

import ast
import dataclasses
import typing
from pathlib import Path

from pipeline.core import config
from pipeline.core.errors import ArgumentParser
from pipeline.core.fingerprint import SOURCE_ROOT, module_file, project_modules

# Params' top-level sections -> their dataclass (plain keys such as ``profile`` map to None).
SECTIONS: dict[str, type | None] = {}
for _field in dataclasses.fields(config.Params):
    _kind = typing.get_type_hints(config.Params)[_field.name]
    SECTIONS[_field.name] = _kind if dataclasses.is_dataclass(_kind) else None
BY_CLASS = {kind.__name__: section for section, kind in SECTIONS.items() if kind is not None}
ROOTS = {"params"}  # what the loaded params are called, everywhere in the code
# Methods of Params that read whole sections.
METHODS = {"runs": ("grid", "repeats")}


def _fields(section: str) -> set[str]:
    kind = SECTIONS.get(section)
    return {field.name for field in dataclasses.fields(kind)} if kind is not None else set()


def _section_names(tree: ast.AST) -> dict[str, str]:
    """Argument names annotated with a section's class -> the section (e.g. ``evaluate: EvaluateParams``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            annotation = ast.unparse(node.annotation).split(".")[-1]
            if annotation in BY_CLASS:
                names[node.arg] = BY_CLASS[annotation]
    return names


def _is_root(node: ast.AST) -> bool:
    """The loaded params: a name in ``ROOTS``, or a ``load_params(...)`` call used directly."""
    if isinstance(node, ast.Name):
        return node.id in ROOTS
    if isinstance(node, ast.Call):
        function = node.func
        return (isinstance(function, ast.Name) and function.id == "load_params") or (
            isinstance(function, ast.Attribute) and function.attr == "load_params")  # fmt: skip
    return False


def keys_in(source: str) -> set[str]:
    """The params keys one module's source reads (``section`` or ``section.key``)."""
    tree = ast.parse(source)
    handed = _section_names(tree)
    for node in ast.walk(tree):  # grid = load_params(path).grid: ``grid`` is that section from here on
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Attribute) and _is_root(node.value.value)
                and node.value.attr in SECTIONS):  # fmt: skip
            handed[node.targets[0].id] = node.value.attr
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attribute = node.attr
        rooted = _is_root(node.value)
        root = node.value.id if isinstance(node.value, ast.Name) else None
        if rooted and attribute in METHODS:
            found.update(METHODS[attribute])
        elif rooted and attribute in SECTIONS:
            parent = parents.get(node)
            field = parent.attr if isinstance(parent, ast.Attribute) and parent.value is node else None
            # grid = load_params(path).grid hands the section on: its keys are read where the name is used
            assigned = isinstance(parent, ast.Assign) and parent.value is node
            if not assigned:
                found.add(f"{attribute}.{field}" if field in _fields(attribute) else attribute)
        elif root in handed and attribute in _fields(handed[root]):
            found.add(f"{handed[root]}.{attribute}")
    return found


def stage_params(entry: str, root: Path = SOURCE_ROOT) -> set[str]:
    """Every params key the code of the stage run as ``python -m entry`` can read, its imports included."""
    found: set[str] = set()
    for name in project_modules(entry, root):
        path = module_file(name, root)
        if path is not None:
            found |= keys_in(path.read_text())
    return _collapse(found)


def _collapse(keys: set[str]) -> set[str]:
    """A whole section read covers its keys: ``evaluate`` and ``evaluate.seed`` -> ``evaluate``."""
    return {key for key in keys if "." not in key or key.split(".")[0] not in keys}


def main() -> None:
    parser = ArgumentParser(description="The params keys a stage's code reads (its imports included).")
    parser.add_argument("module", help="a stage's module, e.g. pipeline.results.aggregate")
    for key in sorted(stage_params(parser.parse_args().module)):
        print(key)


if __name__ == "__main__":
    from pipeline.core.errors import run_stage

    run_stage(main)
