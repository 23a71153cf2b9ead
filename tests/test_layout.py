"""The import contract of the source tree, checked over the real import graph (every import statement,
the ones inside functions too): the layers point one way, and the tests mirror the tree."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "strategies", "config")
PREFIX = "chorus_mcp."


def _source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_of(path) for path in _source_files()}


def _imports(path: Path) -> list[str]:
    """Every module `path` imports (absolute names, as written).

    `from package import module` counts as importing the module, not the package's face."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            submodules = [n for n in names if n.removeprefix(PREFIX) in MODULES]
            found.extend(submodules)
            if len(submodules) < len(names):
                found.append(node.module)
    return found


GRAPH: dict[str, set[str]] = {}
for _path in _source_files():
    _module = _module_of(_path)
    GRAPH[_module] = set()
    for _name in _imports(_path):
        if _name.startswith(PREFIX):
            GRAPH[_module].add(_name.removeprefix(PREFIX))


def _project_edges(module: str) -> set[str]:
    """The project modules `module` imports (a name that is not a module counts as its package)."""
    edges = set()
    for name in GRAPH[module]:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            edges.add(name)
    return edges


def _importers_of(prefix: str, *, within: str = "") -> list[str]:
    return sorted(
        m
        for m in MODULES
        if m.startswith(within) and any(e == prefix or e.startswith(prefix + ".") for e in _project_edges(m))
    )


def _foreign_importers(top: str) -> list[str]:
    """Modules importing the third-party package `top` (by any of its submodules)."""
    return sorted(
        _module_of(path)
        for path in _source_files()
        if any(name == top or name.startswith(top + ".") for name in _imports(path))
    )


def test_the_project_has_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in _project_edges(node):
            if edge not in index:
                visit(edge)
                low[node] = min(low[node], low[edge])
            elif edge in on_stack:
                low[node] = min(low[node], index[edge])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_core_imports_nothing_above_it() -> None:
    above = [
        (m, e)
        for m in MODULES
        if m.startswith("strategies.core")
        for e in _project_edges(m)
        if not e.startswith("strategies.core")
    ]
    assert above == []


def test_the_model_layer_imports_only_the_core_and_config() -> None:
    allowed = ("strategies.core", "strategies.models", "config")
    above = [
        (m, e)
        for m in MODULES
        if m.startswith("strategies.models")
        for e in _project_edges(m)
        if not e.startswith(allowed)
    ]
    assert above == []


def test_strategy_kinds_never_import_the_runner() -> None:
    assert _importers_of("strategies.engine.runner", within="strategies.kinds") == []


def test_the_strategy_core_never_imports_the_server() -> None:
    assert _importers_of("server", within="strategies") == []
    assert _importers_of("server", within="config") == []


def test_only_the_server_imports_mcp() -> None:
    assert [m for m in _foreign_importers("mcp") if not m.startswith("server")] == []


def test_exactly_one_module_imports_litellm() -> None:
    assert _foreign_importers("litellm") == ["strategies.models.providers.litellm_client"]


def test_the_server_reaches_providers_only_through_availability() -> None:
    assert _importers_of("strategies.models.providers", within="server") == []


def test_offline_evaluation_is_not_imported_at_run_time() -> None:
    run_time = [m for m in MODULES if not m.startswith(("strategies.evaluation", "server.cli"))]
    reaching = sorted(
        m for m in run_time if any(e.startswith("strategies.evaluation") for e in _project_edges(m))
    )
    assert reaching == []


@pytest.mark.parametrize(
    "path",
    sorted(str(p.relative_to(REPO)) for p in _source_files()),
)
def test_no_module_imports_the_unprefixed_packages(path: str) -> None:
    bare = [n for n in _imports(REPO / path) if n.split(".")[0] in PACKAGES]
    assert bare == []


def test_every_test_folder_mirrors_a_source_folder() -> None:
    tests = REPO / "tests"
    strays = [
        str(folder.relative_to(tests))
        for folder in sorted(tests.rglob("*"))
        if folder.is_dir()
        and folder.name != "__pycache__"
        and folder.relative_to(tests).parts[0] in PACKAGES
        and any(folder.glob("test_*.py"))
        and not (REPO / folder.relative_to(tests)).is_dir()
    ]
    assert strays == []
