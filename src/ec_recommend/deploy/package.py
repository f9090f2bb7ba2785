"""The Lambda authorizer's deployment package: a zip for the stack's AuthorizerCode* parameters.

The package holds ``ec_recommend`` itself and the few distributions the
authorizer imports (its token verifier and the settings reader), installed
for Lambda's platform and the Python the template names, never the whole
service stack (moto, SQLAlchemy, ...), so it stays far below Lambda's limits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import ec_recommend

# What lambda_authorizer imports beyond the standard library (a test checks it).
AUTHORIZER_DISTRIBUTIONS = ("python-jose", "aiohttp", "pyyaml")
LAMBDA_PLATFORM = "manylinux2014_x86_64"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same zip


class PackagingError(RuntimeError):
    """The package could not be built; the message says why (pip's last lines)."""


def authorizer_requirements() -> list[str]:
    """The requirement strings of pyproject for AUTHORIZER_DISTRIBUTIONS, as declared."""
    wanted = {name.lower() for name in AUTHORIZER_DISTRIBUTIONS}
    found = [
        requirement
        for requirement in metadata.requires("ec-recommend") or []
        if ";" not in requirement and _name(requirement) in wanted
    ]
    missing = wanted - {_name(r) for r in found}
    if missing:
        raise PackagingError(f"pyproject declares no {sorted(missing)}")
    return found


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()


def package_authorizer(out: Path, python: str, *, dependencies: bool = True) -> int:
    """Write the zip to ``out``; return its number of files."""
    with tempfile.TemporaryDirectory(prefix="ec-authorizer-") as scratch:
        root = Path(scratch) / "package"
        if dependencies:
            _pip_install(root, python)
        source = Path(ec_recommend.__file__).parent
        shutil.copytree(
            source, root / "ec_recommend", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        files = sorted(p for p in root.rglob("*") if p.is_file())
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in files:
                    info = zipfile.ZipInfo(str(path.relative_to(root)), _ZIP_TIME)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, path.read_bytes())
            partial.replace(out)  # never a half-written zip at ``out``
        finally:
            partial.unlink(missing_ok=True)
    return len(files)


def _pip_install(target: Path, python: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target),
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--only-binary=:all:",
        *authorizer_requirements(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise PackagingError(f"pip could not install the authorizer's dependencies:\n{tail}")
