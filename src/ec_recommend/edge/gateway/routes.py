"""``settings/routes.yaml`` (the seed's route table) and the endpoints under it.

A ``RouteRule`` is one entry of the YAML: a path prefix (``/api/v1/products/*``)
or exact path, the owning service, its methods and its auth mode. An
``Endpoint`` is one concrete operation under a rule, declared next to its
handler with the schemas that validate its input and describe it in OpenAPI.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from ec_recommend.edge.gateway.schema import Object, Schema, path_parameter

if TYPE_CHECKING:
    from aiohttp import web

    from ec_recommend.edge.gateway.request import ApiRequest
    from ec_recommend.platform.rpc.context import Identity

AuthMode = Literal["required", "optional", "none"]
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


class RoutesError(ValueError):
    """routes.yaml that cannot work; the message names the entry."""


@dataclass(frozen=True)
class RouteRule:
    path: str
    service: str
    methods: frozenset[str]
    auth: AuthMode = "none"
    group: str | None = None  # the Cognito group a caller must be in (auth: required)

    @property
    def prefix(self) -> str:
        return self.path[:-2] if self.path.endswith("/*") else self.path

    def matches(self, path: str) -> bool:
        if self.path.endswith("/*"):
            return path == self.prefix or path.startswith(self.prefix + "/")
        return path == self.path


@dataclass(frozen=True)
class RouteTable:
    rules: tuple[RouteRule, ...]
    _tests: tuple[tuple[str, str | None, RouteRule], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # The longest prefix wins, so a specific rule can refine a general one:
        # tried longest first (ties in file order), the first match is the one.
        # Checked on every request, so the tests are plain string operations.
        ordered = sorted(self.rules, key=lambda rule: -len(rule.prefix))
        tests = tuple(
            (rule.prefix, rule.prefix + "/" if rule.path.endswith("/*") else None, rule)
            for rule in ordered
        )
        object.__setattr__(self, "_tests", tests)

    def match(self, path: str) -> RouteRule | None:
        for exact, under, rule in self._tests:
            if path == exact or (under is not None and path.startswith(under)):
                return rule
        return None


def load_routes(path: Path | None = None) -> RouteTable:
    if path is None:
        text = resources.files("ec_recommend.settings").joinpath("routes.yaml").read_text("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return parse_routes(yaml.safe_load(text))


def parse_routes(document: Any) -> RouteTable:
    if not isinstance(document, dict) or not isinstance(document.get("routes"), list):
        raise RoutesError("routes.yaml: expected a top-level 'routes' list")
    rules = []
    for index, entry in enumerate(document["routes"]):
        where = f"routes[{index}]"
        if not isinstance(entry, dict):
            raise RoutesError(f"{where}: expected a mapping")
        path = entry.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise RoutesError(f"{where}.path: expected an absolute path")
        methods = entry.get("methods")
        if not isinstance(methods, list) or not methods:
            raise RoutesError(f"{where}.methods: expected a non-empty list")
        upper = frozenset(str(m).upper() for m in methods)
        if not upper <= HTTP_METHODS:
            raise RoutesError(f"{where}.methods: unknown method(s) {sorted(upper - HTTP_METHODS)}")
        auth = entry.get("auth", "none")
        if auth not in ("required", "optional", "none"):
            raise RoutesError(f"{where}.auth: expected required or optional, got {auth!r}")
        group = entry.get("group")
        if group is not None and (not isinstance(group, str) or auth != "required"):
            raise RoutesError(f"{where}.group: a group name, on a route with auth: required")
        rules.append(RouteRule(path, str(entry.get("service", "")), upper, auth, group))
    return RouteTable(tuple(rules))


Handler = Callable[["ApiRequest"], Awaitable[Any]]
# Answers from this process's memory (rendered JSON) or returns None; runs
# after auth and input checks, before any deadline is set up.
Peek = Callable[["web.Request", "Identity | None"], bytes | None]


@dataclass(frozen=True)
class Endpoint:
    """One REST operation.

    ``response`` is the betterproto2 message type of a success body (or None
    for 204); ``list_of`` marks a paged list of that type. ``auth="required"``
    tightens an ``optional`` rule for this operation (e.g. posting a review).
    """

    method: str
    path: str
    handler: Handler
    summary: str
    body: Object | None = None
    query: Object | None = None
    response: type[Any] | None = None
    list_of: type[Any] | None = None
    json_response: dict[str, Any] | None = None
    status: int = 200
    auth: AuthMode | None = None
    idempotent: bool = False
    errors: Sequence[int] = ()
    peek: Peek | None = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @cached_property  # checked on every request
    def path_parameters(self) -> dict[str, Schema]:
        """The schemas of the ``{name}`` parts of the path, in order."""
        return {name: path_parameter(name) for name in _PATH_PARAMETER.findall(self.path)}

    def validate_path(self, values: Mapping[str, str]) -> dict[str, Any]:
        return {
            name: schema.validate(values[name], name)
            for name, schema in self.path_parameters.items()
        }


_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
