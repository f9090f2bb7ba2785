"""Dependencies point one way: edge apps and runtime -> services -> platform, and no circles.

Read from the source (module-level imports, TYPE_CHECKING blocks included;
imports inside functions are deliberate lazy loads and not counted).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ec_recommend

PACKAGE = Path(ec_recommend.__file__).parent
# The fabric imports none of what is built on it.
ABOVE_PLATFORM = ("runtime", "edge", "services", "consumers", "cli", "client")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "_gen" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _top_level_imports(path: Path) -> Iterator[str]:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        nodes = node.body if isinstance(node, ast.If) else [node]
        for statement in nodes:
            if isinstance(statement, ast.Import):
                yield from (alias.name for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                yield statement.module
                yield from (f"{statement.module}.{alias.name}" for alias in statement.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {dep for dep in _top_level_imports(path) if dep in modules and dep != name}
        for name, path in modules.items()
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return circles


def test_no_import_circles() -> None:
    assert _circles(_graph()) == []


def test_the_fabric_imports_nothing_built_on_it() -> None:
    above = tuple(f"ec_recommend.{name}" for name in ABOVE_PLATFORM)
    upward = {
        name: sorted(dep for dep in deps if dep.startswith(above))
        for name, deps in _graph().items()
        if name.startswith("ec_recommend.platform")
    }
    assert {name: deps for name, deps in upward.items() if deps} == {}


def test_the_circle_finder_finds_circles() -> None:
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
