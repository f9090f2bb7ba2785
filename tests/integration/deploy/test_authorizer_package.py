"""The authorizer's package holds what the handler imports, and nothing half-written."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from ec_recommend.deploy import package
from ec_recommend.deploy.package import (
    AUTHORIZER_DISTRIBUTIONS,
    PackagingError,
    package_authorizer,
)
from ec_recommend.deploy.template import lambda_python

LOADED = (
    "import json, sys; import ec_recommend.platform.auth.lambda_authorizer as m; "
    "print(json.dumps({n: getattr(x, '__file__', None) for n, x in sys.modules.items() "
    "if n.startswith('ec_recommend')}))"
)


def test_the_declared_distributions_cover_what_the_handler_imports() -> None:
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", LOADED], text=True))
    imported: set[str] = set()
    for path in filter(None, loaded.values()):
        for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"ec_recommend", "__future__"}
    distributions = metadata.packages_distributions()
    # imports under TYPE_CHECKING or in functions the handler never runs may
    # name more; what is imported at module level must be packaged
    needed = {distributions[name][0].lower() for name in third_party if name in distributions}
    packaged = {name.lower() for name in AUTHORIZER_DISTRIBUTIONS}
    assert needed <= packaged | _dependencies_of(packaged), needed - packaged


def _dependencies_of(names: set[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        for requirement in metadata.requires(name) or []:
            found.add(package._name(requirement))
    return found


def test_the_package_holds_the_handler(tmp_path: Path) -> None:
    out = tmp_path / "authorizer.zip"
    count = package_authorizer(out, lambda_python(), dependencies=False)
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
    assert len(names) == count
    assert "ec_recommend/platform/auth/lambda_authorizer.py" in names
    assert not [name for name in names if "__pycache__" in name]


def test_a_failed_install_leaves_no_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "LAMBDA_PLATFORM", "no_such_platform")
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: pip fails at once
    out = tmp_path / "authorizer.zip"
    with pytest.raises(PackagingError, match="could not install"):
        package_authorizer(out, lambda_python())
    assert list(tmp_path.iterdir()) == []
