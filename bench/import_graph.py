"""Figures of the source tree's import graph: modules, arrows, cycles, imports hidden inside functions.

    uv run python bench/import_graph.py [CHECKOUT]

Reads every import statement (those inside functions too) of `server/`, `strategies/` and `config/` in
CHECKOUT (default: this repository), with or without the `chorus_mcp.` prefix, so an older checkout
can be measured beside this one (`git worktree add /tmp/old <commit>`).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("server", "strategies", "config")


def _module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def measure(root: Path) -> dict[str, object]:
    files = [p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))]
    modules = {_module_of(root, p): p for p in files}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    in_functions = 0
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nested = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for inner in ast.walk(node)
            if isinstance(inner, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                found = [s for s in subs if s.removeprefix("chorus_mcp.") in modules]
                names = found + ([node.module] if len(found) < len(subs) else [])
            targets = set()
            for name in names:
                name = name.removeprefix("chorus_mcp.")
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    targets.add(name)
            if targets and id(node) in nested:
                in_functions += 1
            edges[module] |= targets
    cycles = _cycles(edges)
    return {
        "modules": len(modules),
        "arrows": sum(len(t) for t in edges.values()),
        "cycles": len(cycles),
        "modules in cycles": sum(len(c) for c in cycles),
        "largest cycle": max((len(c) for c in cycles), default=0),
        "project imports inside functions": in_functions,
        "lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in files),
    }


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for edge in edges[node]:
            if edge not in index:
                visit(edge)
                low[node] = min(low[node], low[edge])
            elif edge in on_stack:
                low[node] = min(low[node], index[edge])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                on_stack.discard(member)
                component.append(member)
            on_stack.discard(node)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    for name, value in measure(root).items():
        print(f"{name:34} {value}")
