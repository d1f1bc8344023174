"""Every module imports on its own, and no two of the project's modules import each other.

The cycle check reads the code (``ast``), counting imports inside functions too, so a lazy
import that hides a cycle from the interpreter still fails here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

#: the folders of the one installed package: paperchat/ itself, and rag/ ui/ eval/ bench/ mapped under it
PACKAGES = ("paperchat", "rag", "ui", "eval", "bench")


def project_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name (as installed: ``paperchat.rag.store``) -> file, for every ``.py`` of the folders under ``root``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[0] != "paperchat":
                parts.insert(0, "paperchat")
            modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which project modules each module imports (top-level and lazy imports; parents packages left out)."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                anchor = base[: len(base) - node.level + 1] if node.level else []
                prefix = ".".join(anchor + ([node.module] if node.module else []))
                targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target)
                if found and found != module and not module.startswith(found + "."):
                    graph[module].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports (strongly connected, more than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_the_project_modules():
    graph = import_graph(project_modules(ROOT))
    assert len(graph) > 20  # the checker found the project
    assert "paperchat.rag.bm25" in graph["paperchat.rag.store"] and "paperchat.rag.store" not in graph["paperchat.rag.bm25"]
    assert cycles(graph) == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles(graph))


def test_the_cycle_check_finds_lazy_and_relative_cycles(tmp_path):
    pkg = tmp_path / "rag"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from paperchat.rag import c\n")
    (pkg / "c.py").write_text("import paperchat.rag.a\n")
    (pkg / "d.py").write_text("from . import a\n")
    assert cycles(import_graph(project_modules(tmp_path, ("rag",)))) == [["paperchat.rag.a", "paperchat.rag.b", "paperchat.rag.c"]]


@pytest.mark.parametrize("module", sorted(project_modules(ROOT)))
def test_module_imports_alone(module):
    """Each module imports in a fresh interpreter, so none depends on another having been imported first."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_imports_use_the_installed_names():
    """No module or test imports the bare folder names (``rag``, ``ui``, ``eval``, ``bench``): installed, only ``paperchat.*`` exists."""
    files = list(project_modules(ROOT).values()) + sorted((ROOT / "tests").glob("*.py"))
    bare = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bare += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in PACKAGES[1:]]
    assert bare == []


def test_the_checkout_is_what_the_tests_import():
    import paperchat
    import paperchat.rag

    assert Path(paperchat.__file__).resolve() == ROOT / "paperchat" / "__init__.py"
    assert Path(paperchat.rag.__file__).resolve() == ROOT / "rag" / "__init__.py"
