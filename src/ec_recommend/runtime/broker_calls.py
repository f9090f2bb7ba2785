"""Calls the local broker served, counted by the broker itself.

Benchmarks and tests need "broker calls per order" as the broker saw them,
whatever client made them, so the count lives in moto's child: a WSGI
middleware in front of moto's app tallies every AWS call by service and
action, and answers ``GET /_ec/calls`` (a path no AWS protocol uses) with

    {"calls": {"sqs": {"ReceiveMessage": 12, ...}, ...},
     "queues": {"<queue name>": {"visible": 0, "in_flight": 0, "delayed": 0}, ...}}

``queues`` is read from moto's own SQS state in this process, so a reader
can tell when every message has been handled without making (and counting)
calls of its own. Counting is a dict increment per call, so it is always on.

Service and action come from what every AWS client sends: the service from
the SigV4 credential scope (``Credential=<key>/<date>/<region>/<service>/``),
or from the ``X-Amz-Target`` prefix of unsigned calls (Cognito's public
APIs); the action from ``X-Amz-Target`` (JSON protocols, SQS included) or
the ``Action`` field of the query protocol (SNS, SES), in the query string
or the form body.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_plus

CALLS_PATH = "/_ec/calls"
MOTO_API = "moto-api"  # moto's own endpoints (/moto-api/...): probes, seeding, not AWS calls
UNKNOWN = "unknown"

# X-Amz-Target prefixes -> service, for calls that carry no signature.
_TARGET_SERVICES = {
    "AmazonSQS": "sqs",
    "AWSCognitoIdentityProviderService": "cognito-idp",
    "AWSCognitoIdentityService": "cognito-identity",
}
_FORM = "application/x-www-form-urlencoded"
# The Action field of a form, found without parsing the rest: a PublishBatch's
# form is ten envelopes, and parsing all of it cost ~5 % of the broker's CPU.
_ACTION_FIELD = re.compile(r"(?:^|&)Action=([^&]*)")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def service_of(environ: Mapping[str, Any]) -> str:
    """The AWS service a request is for (``sqs``, ``sns``, ``ses``, ``cognito-idp``...)."""
    path = str(environ.get("PATH_INFO", ""))
    if path.startswith("/moto-api"):
        return MOTO_API
    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    marker = "Credential="
    start = authorization.find(marker)
    if start >= 0:
        scope = authorization[start + len(marker) :].split(",", 1)[0].split("/")
        if len(scope) >= 5:
            return scope[3]
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        prefix = target.split(".", 1)[0]
        return _TARGET_SERVICES.get(prefix, prefix.split("_", 1)[0] or UNKNOWN)
    return UNKNOWN


def action_of(environ: Mapping[str, Any], body: bytes) -> str:
    """The API action of a request; ``body`` is its form body (may be empty)."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target:
        return target.rsplit(".", 1)[-1]
    for source in (str(environ.get("QUERY_STRING", "")), body.decode("latin-1")):
        field = _ACTION_FIELD.search(source)
        if field and field.group(1):
            return unquote_plus(field.group(1))
    path = str(environ.get("PATH_INFO", ""))
    return path if path.startswith("/moto-api") else UNKNOWN


def _is_form(environ: Mapping[str, Any]) -> bool:
    return str(environ.get("CONTENT_TYPE", "")).startswith(_FORM)


class CallCounter:
    """Calls per (service, action); safe across the server's request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: defaultdict[tuple[str, str], int] = defaultdict(int)

    def record(self, service: str, action: str) -> None:
        with self._lock:
            self._counts[(service, action)] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        """``{service: {action: calls}}`` so far."""
        with self._lock:
            counts = dict(self._counts)
        by_service: dict[str, dict[str, int]] = {}
        for (service, action), calls in sorted(counts.items()):
            by_service.setdefault(service, {})[action] = calls
        return by_service


QueueDepths = Callable[[], dict[str, dict[str, int]]]


def moto_queue_depths() -> dict[str, dict[str, int]]:
    """Messages per SQS queue of every account and region in this moto process.

    ``in_flight`` counts received messages not yet deleted (invisible),
    ``delayed`` those sent with a delay that has not passed yet.
    """
    from moto.sqs.models import sqs_backends

    depths: dict[str, dict[str, int]] = {}
    for _account, _region, backend in sqs_backends.iter_backends():
        for name, queue in list(backend.queues.items()):  # type: ignore[attr-defined]
            visible = in_flight = delayed = 0
            for message in list(queue._messages):
                if message.delayed:
                    delayed += 1
                elif message.visible:
                    visible += 1
                else:
                    in_flight += 1
            depths[name] = {"visible": visible, "in_flight": in_flight, "delayed": delayed}
    return depths


class CountingMiddleware:
    """Wraps a WSGI app: counts each call, and serves ``GET /_ec/calls``."""

    def __init__(
        self, app: WsgiApp, counter: CallCounter, queue_depths: QueueDepths | None = None
    ) -> None:
        self.app = app
        self.counter = counter
        self.queue_depths = queue_depths

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CALLS_PATH:
            return self._report(start_response)
        body = b""
        if _is_form(environ):
            # Read the form to find its Action; moto reads it again from a copy.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
        self.counter.record(service_of(environ), action_of(environ, body))
        return self.app(environ, start_response)

    def _report(self, start_response: StartResponse) -> Iterable[bytes]:
        report: dict[str, Any] = {"calls": self.counter.snapshot()}
        if self.queue_depths is not None:
            report["queues"] = self.queue_depths()
        payload = json.dumps(report).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


def install(counter: CallCounter | None = None) -> CallCounter:
    """Put the counter in front of every moto app this process serves.

    It wraps ``DomainDispatcherApplication`` (the app moto's server runs)
    at the class, so it holds however the server is started.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    counter = counter or CallCounter()
    serve = DomainDispatcherApplication.__call__

    def counted(self: Any, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        middleware = self.__dict__.get("_ec_counting")
        if middleware is None:
            app: WsgiApp = lambda env, respond: serve(self, env, respond)  # noqa: E731
            middleware = self._ec_counting = CountingMiddleware(app, counter, moto_queue_depths)
        return middleware(environ, start_response)  # type: ignore[no-any-return]

    DomainDispatcherApplication.__call__ = counted  # type: ignore[method-assign]
    return counter
