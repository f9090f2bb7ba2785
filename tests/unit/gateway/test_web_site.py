"""The front end ships inside the package, and the policy that guards it."""

from __future__ import annotations

import re

from ec_recommend.edge.web.site import CONTENT_SECURITY_POLICY, load_files


def test_the_package_carries_every_front_end_file() -> None:
    files = load_files()
    modules = {"app.js", "api.js", "push.js", "ui.js", "shop.js", "seller.js", "console.js"}
    assert modules | {"index.html", "chart.js", "style.css", "favicon.svg"} <= set(files)
    assert files["app.js"][1] == "text/javascript; charset=utf-8"


def test_every_module_imports_only_modules_of_this_origin() -> None:
    for name, (body, _type) in load_files().items():
        if name.endswith(".js"):
            specifiers = re.findall(r'(?:from|import)\s+"([^"]+)"', body.decode())
            for specifier in specifiers:
                assert specifier.startswith("./"), f"{name} imports {specifier}"


def test_the_policy_allows_nothing_from_elsewhere_and_nothing_inline() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
