"""Who calls which gRPC service, read from the source.

A caller's identity (the gateway, a service, a consumer) owns a set of
source files; the services it calls are the ``<Name>ServiceStub`` classes
those files name. Used by the allow-list test (mesh.yaml) and the
NetworkPolicy test (deploy/kubernetes).
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

from ec_recommend.platform.security.tls import GATEWAY
from ec_recommend.runtime.registry import CONSUMERS, SERVICES

SOURCE = Path(importlib.util.find_spec("ec_recommend").origin or "").parent  # type: ignore[union-attr]
_STUB = re.compile(r"^(\w+)ServiceStub$")


def _module_file(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package = SOURCE / relative
    return package / "__init__.py" if package.is_dir() else package.with_suffix(".py")


def _with_local_imports(files: Iterable[Path]) -> set[Path]:
    """``files`` plus the ``ec_recommend.consumers`` modules they import, transitively."""
    seen: set[Path] = set()
    todo = list(files)
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "ec_recommend.consumers."
            ):
                todo.append(_module_file(str(node.module)))
    return seen


def caller_files() -> dict[str, set[Path]]:
    """Every identity that makes calls -> the source files of its code."""
    callers: dict[str, set[Path]] = {
        GATEWAY: {*(SOURCE / "edge" / "gateway").rglob("*.py"), SOURCE / "runtime" / "demo.py"}
    }
    for name, module in SERVICES.items():
        package = _module_file(module).parent
        callers.setdefault(name, set()).update(package.rglob("*.py"))
    for name, module in CONSUMERS.items():
        callers.setdefault(name, set()).update(_with_local_imports([_module_file(module)]))
    return callers


def stubbed_services(files: Iterable[Path]) -> tuple[set[str], set[str]]:
    """(services whose stubs these files name, every attribute name they use)."""
    targets: set[str] = set()
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
                stub = _STUB.match(node.attr)
                if stub:
                    targets.add(stub.group(1).lower())
    return targets, names


def call_graph() -> dict[str, set[str]]:
    """caller identity -> the services it calls."""
    return {caller: stubbed_services(files)[0] for caller, files in caller_files().items()}
