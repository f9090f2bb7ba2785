"""``allowed_callers`` in mesh.yaml names exactly the callers the code has.

The callers are read from the source: which service stubs a caller's modules
make (``.stub(pb.ProductServiceStub, ...)``) and which of the restricted
methods they name (``commit_stock``). A consumer that starts calling a
restricted method, or a caller that stops, fails here before it fails with
PERMISSION_DENIED under STRICT mTLS in production.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ec_recommend.platform.rpc.mesh import load_mesh
from ec_recommend.platform.security.tls import GATEWAY
from ec_recommend.runtime.registry import SERVICES
from tests.unit.security.call_graph import caller_files, stubbed_services


def _snake(method: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", method).lower()


def _calls(files: Iterable[Path], restricted: dict[str, set[str]]) -> set[tuple[str, str]]:
    """(service, Method) pairs of restricted methods these files call."""
    targets, names = stubbed_services(files)
    return {
        (service, method)
        for service in targets
        for method in restricted.get(service, ())
        if _snake(method) in names
    }


def _restricted() -> dict[str, dict[str, set[str]]]:
    """service -> Method -> the callers mesh.yaml allows."""
    mesh = load_mesh()
    found: dict[str, dict[str, set[str]]] = {}
    for service in {*SERVICES, "user", "product", "order", "cart"}:
        allowed = mesh.policy(service).allowed_callers
        if allowed:
            found[service] = {method: set(callers) for method, callers in allowed.items()}
    return found


def _real_callers() -> dict[tuple[str, str], set[str]]:
    restricted = {service: set(methods) for service, methods in _restricted().items()}
    real: dict[tuple[str, str], set[str]] = {}
    for caller, files in caller_files().items():
        for pair in _calls(files, restricted):
            real.setdefault(pair, set()).add(caller)
    return real


def test_the_scan_sees_the_known_callers() -> None:
    real = _real_callers()
    assert "order" in real[("product", "ReserveStock")]
    assert "inventory" in real[("product", "RestockReservation")]
    assert GATEWAY in real[("user", "CreateUser")]


def test_every_caller_in_the_code_is_allowed() -> None:
    restricted = _restricted()
    refused = {
        f"{service}.{method}": sorted(callers - restricted[service].get(method, set()))
        for (service, method), callers in _real_callers().items()
        if callers - restricted[service].get(method, set())
    }
    assert not refused, f"callers missing from allowed_callers in mesh.yaml: {refused}"


def test_every_allowed_caller_really_calls() -> None:
    real = _real_callers()
    stale = {
        f"{service}.{method}": sorted(allowed - real.get((service, method), set()))
        for service, methods in _restricted().items()
        for method, allowed in methods.items()
        if allowed - real.get((service, method), set())
    }
    assert not stale, f"allowed_callers names callers that never call: {stale}"


def test_authorization_has_one_source_of_truth() -> None:
    """Services decide by role and ownership; no permission table lives beside them."""
    from pathlib import Path

    import ec_recommend

    source = Path(ec_recommend.__file__).parent
    tables = [
        path.relative_to(source)
        for path in source.rglob("*.py")
        if "_gen" not in path.parts
        and any(name in path.read_text() for name in ("permissions_for", "GROUP_PERMISSIONS"))
    ]
    assert tables == []
