"""The repository files each stage's code runs, derived from its imports (for dvc.yaml deps).

A stage command ``python -m stages.<x>`` executes ``stages/__init__.py``, ``stages/<x>.py``
and every repository module they import, transitively: module-level and function-level
imports alike (a function-level import still runs when the stage does). Imports under
``if TYPE_CHECKING:`` never run and are skipped. Modules outside the repository (pandas,
sklearn...) are not files of ours and are ignored.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = (Path("."), Path("src"))  # where top-level packages live
# Files a module reads at run time besides its imports: they are code too.
RUNTIME_FILES = {"src/tabml/report.py": ("src/tabml/templates/report.html.j2",)}
CMD_MODULE = re.compile(r"\bpython -m ([A-Za-z_][\w.]*)")


def module_file(name: str, root: Path = REPO) -> Path | None:
    """The repository file of module ``name`` (relative to ``root``), or None if not ours."""
    parts = name.split(".")
    for base in SOURCE_ROOTS:
        for candidate in (
            base.joinpath(*parts).with_suffix(".py"),
            base.joinpath(*parts, "__init__.py"),
        ):
            if (root / candidate).is_file():
                return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    """Every module name an AST imports at run time (TYPE_CHECKING blocks skipped)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # may be submodules
        stack.extend(ast.iter_child_nodes(node))


def code_files(module: str, root: Path = REPO) -> set[str]:
    """Repository files executed by ``python -m <module>``, as dvc.yaml spells paths."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            sub = ".".join(parts[:i])
            path = module_file(sub, root)
            if path is None or str(path) in seen:
                continue
            seen.add(str(path))
            seen.update(RUNTIME_FILES.get(str(path), ()))
            package = sub if path.name == "__init__.py" else sub.rpartition(".")[0]
            tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
            todo.extend(_imports(tree, package))
    return seen


def stage_code(dvc_yaml: Path, root: Path = REPO) -> dict[str, tuple[str, set[str], set[str]]]:
    """Per stage definition of dvc.yaml: (module its cmd runs, code files it runs, the code
    files its deps list). Code files are .py files and RUNTIME_FILES; other deps are data."""
    stages = YAML(typ="safe", pure=True).load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    runtime = {f for files in RUNTIME_FILES.values() for f in files}
    out = {}
    for name, definition in stages.items():
        body = definition.get("do", definition)
        match = CMD_MODULE.search(body["cmd"])
        assert match, f"{name}: cmd does not run a module: {body['cmd']}"
        listed = {d for d in body.get("deps", []) if d.endswith(".py") or d in runtime}
        out[name] = (match[1], code_files(match[1], root), listed)
    return out


def dep_problems(dvc_yaml: Path, root: Path = REPO) -> list[str]:
    """One line per code file a stage runs but does not list, or lists but does not run."""
    problems = []
    for name, (module, runs, listed) in stage_code(dvc_yaml, root).items():
        problems += [
            f"{name}: runs {f} ({module}) but dvc.yaml does not list it"
            for f in sorted(runs - listed)
        ]
        problems += [f"{name}: lists {f}, which {module} never runs" for f in sorted(listed - runs)]
    return problems
