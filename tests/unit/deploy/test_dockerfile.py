"""The image agrees with pyproject.toml: its Python and its entry point.

No Docker engine runs in CI (hadolint lints the file there, .ci/deploy-checks),
so what the image would run is checked against the package's own metadata.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _instruction(name: str) -> str:
    found = re.findall(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)
    assert len(found) == 1, f"expected one {name} in the Dockerfile, found {found}"
    return str(found[0])


def test_python_is_the_one_pyproject_targets() -> None:
    version = re.search(r"^ARG PYTHON_VERSION=(\d+)\.(\d+)$", DOCKERFILE, re.MULTILINE)
    assert version, "Dockerfile: ARG PYTHON_VERSION=X.Y"
    major, minor = map(int, version.groups())
    required = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert required
    assert (major, minor) == tuple(map(int, required.groups())), (
        "the image should run the oldest Python the package supports (the one CI tests)"
    )
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"{major}.{minor}"
    bases = re.findall(r"^FROM python:\$\{PYTHON_VERSION\}-slim\S* AS (\w+)$", DOCKERFILE, re.M)
    assert bases == ["build", "runtime"], "both stages use the slim base of that Python"


def test_entry_point_is_the_packaged_command() -> None:
    entrypoint = json.loads(_instruction("ENTRYPOINT"))
    assert entrypoint[0] in PYPROJECT["project"]["scripts"]
    assert PYPROJECT["project"]["scripts"][entrypoint[0]] == "ec_recommend.cli:main"
    assert entrypoint[1:] == ["serve"]
    assert json.loads(_instruction("CMD")) == ["gateway"]


def test_runs_as_a_non_root_user_with_a_health_check() -> None:
    assert _instruction("USER").split(":")[0] not in ("0", "root")
    check = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (.+)$", DOCKERFILE, re.MULTILINE)
    assert check and "/healthz" in check.group(1)
    assert "EC_METRICS_PORT=9100" in DOCKERFILE and ":9100/healthz" in check.group(1)


def test_installs_the_package_from_a_wheel() -> None:
    assert "pip wheel --wheel-dir /wheels ." in DOCKERFILE
    assert "pip install --no-index --find-links=/wheels ec-recommend" in DOCKERFILE
