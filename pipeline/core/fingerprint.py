"""Fingerprints of what a result depends on: files, records, and the project code a stage runs.

``code_fingerprint("pipeline.training.train")`` covers exactly the project modules that the stage imports,
found by walking the import statements of its source (lazy imports inside functions included) with the
packages they sit in: nothing is listed by hand, so a new import is covered the moment it is written. Each
module enters in a form that ignores comments, formatting and docstrings (its syntax tree, serialised
without line numbers and without the empty fields that newer Pythons add), so a cosmetic edit retrains and
re-evaluates nothing, while any change to what the code does changes the fingerprint.

    python -m pipeline.core.fingerprint pipeline.evaluation.evaluate     # the modules and the fingerprint

When a change is known not to affect results but does change the fingerprint (a rename, say), DVC's own
``dvc commit`` records the current outputs as up to date instead of recomputing them.
"""

import ast
import hashlib
import json
import sys
from pathlib import Path

from pipeline.core.errors import ArgumentParser
from pipeline.core.paths import PROJECT_ROOT as SOURCE_ROOT  # the folder that holds pipeline/

PACKAGE = "pipeline"
_SKIPPED_FIELDS = {"ctx", "type_comment", "kind"}  # Load/Store follow from the position; u"" is ""


def digest(paths) -> str:
    """sha256 over file names and contents, in the order given: the fingerprint of data a result depends on."""
    hashed = hashlib.sha256()
    for path in paths:
        hashed.update(Path(path).name.encode())
        with open(path, "rb") as handle:
            while block := handle.read(1 << 22):
                hashed.update(block)
    return hashed.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of one file's content, read in blocks."""
    hashed = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            hashed.update(block)
    return hashed.hexdigest()


def result_digests(folder: Path, names) -> dict[str, str]:
    """sha256 of each named result file in ``folder``: stored beside a result's key, so that a result edited
    after it was computed is never taken for current."""
    return {name: file_sha256(Path(folder) / name) for name in names}


def input_key(inputs: dict) -> str:
    """The key a persistent output stores with a result: sha256 of everything the result depends on."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def module_file(name: str, root: Path = SOURCE_ROOT) -> Path | None:
    """The source file of a project module (a package's ``__init__.py``), or None if it is not one."""
    base = Path(root).joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # a name may be a submodule
    return names


def _with_packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def project_modules(entry: str, root: Path = SOURCE_ROOT) -> list[str]:
    """Every project module that importing and running ``entry`` can import, itself and its packages included."""
    if module_file(entry, root) is None:
        raise ValueError(f"{entry} is not a module of {root / PACKAGE}")
    seen: set[str] = set()
    pending = _with_packages(entry)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for imported in _imported_names(tree, name, path.name == "__init__.py"):
            if imported.split(".")[0] == PACKAGE and module_file(imported, root) is not None:
                pending.extend(candidate for candidate in _with_packages(imported) if candidate not in seen)
    return sorted(seen)


def _without_docstring(body: list) -> list:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


def _form(node) -> str:
    """A syntax tree as text: node types and fields, no positions, no empty fields, no docstrings."""
    if isinstance(node, ast.AST):
        fields = []
        for name, value in ast.iter_fields(node):
            if name in _SKIPPED_FIELDS or value is None or value == []:
                continue
            if name == "body" and isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                value = _without_docstring(value)
            fields.append(f"{name}={_form(value)}")
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return f"[{','.join(_form(item) for item in node)}]"
    return repr(node)


def source_form(path: Path) -> str:
    """What of a module's source counts: its syntax, not its comments, layout or docstrings."""
    return _form(ast.parse(Path(path).read_text(encoding="utf-8"), str(path)))


def code_fingerprint(entry: str, root: Path = SOURCE_ROOT) -> str:
    """sha256 over the module names and source forms of everything ``entry`` imports (``project_modules``)."""
    hashed = hashlib.sha256()
    for name in project_modules(entry, root):
        hashed.update(f"{name}\0{source_form(module_file(name, root))}\0".encode())
    return hashed.hexdigest()


def main() -> None:
    parser = ArgumentParser(description="Show the project modules a stage imports and their fingerprint.")
    parser.add_argument("module", help="a stage's module, e.g. pipeline.training.train")
    args = parser.parse_args()
    try:
        modules = project_modules(args.module)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    for name in modules:
        print(f"  {module_file(name).relative_to(SOURCE_ROOT)}")
    print(f"{args.module}: {len(modules)} modules, fingerprint {code_fingerprint(args.module)}")


if __name__ == "__main__":
    main()
