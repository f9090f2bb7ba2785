"""``python -m ec_recommend.runtime.moto_main``: moto's server for ``up``,
with its per-message retention check made O(1) and its SQS clock cheap.

For every message it hands out, moto's SQS checks the queue's retention
period by computing all of the queue's attributes, which counts every
message the queue holds; receiving a backlog of n messages then costs
O(n²), and the local broker, not the system, set how fast a backlog
drained. The patch reads the one attribute it needs.

Every send still computes the queue's attributes (moto reads one of them,
ContentBasedDeduplication), and counting a queue asks each message whether
it is visible or delayed, each time through moto's clock: a naive UTC
datetime built and subtracted from another, ~3 µs against ~0.1 µs for
``time.time()``. With the attribute names' conversion to snake case, that
was ~25 % of the broker's CPU during a checkout run. SQS's models get the
same clock and the same names, computed cheaply, and receipt handles from
one random read; what moto works out again for every request (its package's
directories, a response class's methods) is kept. A received message is
copied shallowly, not deeply, and only an XML answer is searched for the
request id to write into it.

Around moto: its history is bounded (``moto_memory``), its registries and
each queue's messages are safe for requests answered at once
(``moto_threads``), the consumers' receives and batch deletes are answered
from its SQS backend, the relays' PublishBatch from its SNS backend and the
email consumers' bulk sends from its SES backend, without its request and
response machinery (``moto_sqs_fast``, ``moto_sns_fast``,
``moto_ses_fast``), connections are kept alive (``moto_keepalive``) and
request headers read without the email parser (``moto_headers``), it
writes no access log, its Flask apps run out of debug mode and without CORS,
and it builds the backends ``up`` uses before it listens (``moto_warmup``).
The patches of moto's internals apply only to the moto major version they
were written for; any other runs as it is. ``scripts/bench/broker.py``
measures what they save against moto as shipped.
"""

from __future__ import annotations

import copy
import functools
import os
import string
import sys
import time
from collections.abc import Callable, Hashable
from typing import Any

from ec_recommend.runtime import broker_calls

PATCHED_MAJOR = "5"
# the names moto.sqs.models imported that the patch replaces
PATCHED_NAMES = (
    "unix_time",
    "unix_time_millis",
    "camelcase_to_underscores",
    "generate_receipt_handle",
    "deepcopy",
)


def _retention_check(self: Any, queue_name: str, message: Any) -> bool:
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > time.time())


def unix_time(dt: Any = None) -> float:
    """moto's ``unix_time``: seconds since the epoch, of now or of naive UTC ``dt``."""
    if dt is None:
        return time.time()
    from moto.core.utils import unix_time as moto_unix_time

    return moto_unix_time(dt)


def unix_time_millis(dt: Any = None) -> float:
    return unix_time(dt) * 1000.0


def patch_moto() -> bool:
    """Apply the patches; False when this moto is not the version they fit."""
    import moto
    import moto.sqs.models as sqs_models

    if moto.__version__.split(".")[0] != PATCHED_MAJOR:
        return False
    backend = sqs_models.SQSBackend
    names = vars(sqs_models)
    if not hasattr(backend, "is_message_valid_based_on_retention_period") or not all(
        name in names for name in PATCHED_NAMES
    ):
        return False
    backend.is_message_valid_based_on_retention_period = _retention_check  # type: ignore[method-assign]
    names["unix_time"] = unix_time
    names["unix_time_millis"] = unix_time_millis
    # a pure function of a handful of attribute names
    names["camelcase_to_underscores"] = functools.lru_cache(maxsize=256)(
        names["camelcase_to_underscores"]
    )
    names["generate_receipt_handle"] = receipt_handle
    names["deepcopy"] = copy_for_receive
    _answer_requests_from_memory()
    _request_id_written_only_into_xml()
    _serialized_names_remembered()
    return True


# moto's receipt handle: 185 lowercase letters, drawn one random.choice at a
# time (~6 % of the broker's samples); one urandom call maps bytes to letters.
_RECEIPT_LENGTH = 185
_LETTERS = bytes(ord(string.ascii_lowercase[i % 26]) for i in range(256))


def receipt_handle() -> str:
    """A receipt handle as moto makes them, unique for as long as SQS needs."""
    return os.urandom(_RECEIPT_LENGTH).translate(_LETTERS).decode("ascii")


def copy_for_receive(value: Any) -> Any:
    """moto's ``deepcopy`` in SQS, where it copies each message it hands out.

    It copies only so that filtering the copy's message attributes leaves the
    queue's message whole, and the filter assigns a new dict rather than
    changing the old one: a shallow copy keeps the message just as well, at a
    fraction of a deep one's cost (~6 % of the broker's CPU during checkout).
    Anything else SQS copies (a queue's pending groups) is still copied deeply.
    """
    import moto.sqs.models as sqs_models

    if isinstance(value, sqs_models.Message):
        return copy.copy(value)
    return copy.deepcopy(value)


def _answer_requests_from_memory() -> None:
    """Three answers moto works out again on every request: which directories
    its package has (a listdir and an isdir each, to route the request; ~7 %),
    which methods a response class has (``inspect.getmembers``; ~2.5 %) and
    which backend serves a host (a walk over every service's URL patterns;
    ~3.5 %). None changes while the server runs."""
    import moto.backends as backends
    import moto.core.responses as responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    names = vars(responses)
    names["method_names_from_class"] = functools.lru_cache(maxsize=None)(
        names["method_names_from_class"]
    )
    DomainDispatcherApplication.get_backend_for_host = _remembering(  # type: ignore[method-assign]
        DomainDispatcherApplication.get_backend_for_host, lambda _, host: host, kept=_HOSTS_KEPT
    )


_HOSTS_KEPT = 256  # hosts the broker is reached by: a handful in practice


def _remembering(method: Any, question: Callable[[Any, Any], Hashable], *, kept: int) -> Any:
    """``method(self, arg)``, worked out once for each ``question(self, arg)``.

    At most ``kept`` answers are held: past that they are forgotten, all at
    once, and worked out again. One read each, as the server's threads may
    forget them between two.
    """
    answers: dict[Hashable, Any] = {}
    unknown = object()

    @functools.wraps(method)
    def remembered(self: Any, arg: Any) -> Any:
        key = question(self, arg)
        answer = answers.get(key, unknown)
        if answer is not unknown:
            return answer
        if len(answers) >= kept:
            answers.clear()
        answer = answers[key] = method(self, arg)
        return answer

    return remembered


def silence_access_log() -> bool:
    """No line per request: the child's output is discarded (``local_aws``), and
    formatting the line (path, address, date) was ~12 % of the broker's
    samples during a checkout run. Errors are still logged."""
    import moto.server

    base = getattr(moto.server, "MotoRequestHandler", None)
    if base is None:
        return False

    class QuietRequestHandler(base):  # type: ignore[valid-type,misc]
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    moto.server.MotoRequestHandler = QuietRequestHandler  # type: ignore[attr-defined]
    return True


def _request_id_written_only_into_xml() -> None:
    """moto puts each response's request id into its body with a regex over the
    whole body, for an XML ``<RequestId>``. SQS answers in JSON, which has none,
    and a receive of ten envelopes is tens of kB to scan (~3 % of the broker's
    CPU). The header still carries the id, as before."""
    from moto.core.responses import BaseResponse

    enrich = BaseResponse._enrich_response

    def enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            headers, _ = enrich(headers, "")
            return headers, body
        return enrich(headers, body)

    BaseResponse._enrich_response = staticmethod(enrich_response)  # type: ignore[method-assign,assignment]


_ALIASES_KEPT = 4096  # (picker, object's class, shape, key) answers; moto's shapes are few


def _serialized_names_remembered() -> None:
    """moto's response serializer finds each field's value on a model object by
    asking six alias providers, made anew for every field of every message
    (~11 % of the broker's CPU). Their answer depends only on the object's
    class, the field's shape (with the structure it belongs to) and its key,
    so it is worked out once for each."""
    from moto.core import serialize

    for picker in (serialize.AttributePicker, serialize.XFormedAttributePicker):
        if "get_possible_keys" in vars(picker):
            picker.get_possible_keys = _remembering(  # type: ignore[method-assign]
                _listed(picker.get_possible_keys), _alias_question, kept=_ALIASES_KEPT
            )


def _listed(possible_keys: Any) -> Any:
    @functools.wraps(possible_keys)
    def listed(self: Any, context: Any) -> tuple[str, ...]:
        return tuple(possible_keys(self, context))  # a generator can be read once

    return listed


def _alias_question(picker: Any, context: Any) -> Hashable:
    shape = context.shape
    return (
        type(picker),
        tuple(picker.alias_providers),
        type(context.obj),
        shape,
        getattr(shape, "parent", None),
        context.key,
    )


def serve_without_flask_debug() -> bool:
    """moto builds each service's Flask app in debug mode. That mode exists for
    a developer's browser: on every request with a form (SNS, SES) Flask
    defines a new class to explain a misused upload (~3 % of the broker's
    CPU). Out of it, an error inside moto still answers 500, logged by Flask
    instead of by werkzeug."""
    import moto.server

    create = getattr(moto.server, "create_backend_app", None)  # imported there by name
    if create is None:
        return False

    def create_backend_app(service: Any) -> Any:
        app = create(service)
        app.debug = False
        return app

    moto.server.create_backend_app = create_backend_app  # type: ignore[attr-defined]
    return True


def main() -> None:
    # Before moto is imported (it reads its settings then): the broker's
    # clients are our services, never a browser, so no response needs CORS
    # headers, which Flask-CORS worked out for every request (~3 %).
    os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
    from moto.server import main as moto_server

    from ec_recommend.runtime.moto_headers import install as read_headers_directly
    from ec_recommend.runtime.moto_keepalive import keep_connections_alive
    from ec_recommend.runtime.moto_memory import bound_history
    from ec_recommend.runtime.moto_ses_fast import install as answer_ses_fast
    from ec_recommend.runtime.moto_sns_fast import install as answer_sns_fast
    from ec_recommend.runtime.moto_sqs_fast import install as answer_sqs_fast
    from ec_recommend.runtime.moto_threads import lock_queue_changes, snapshot_registries
    from ec_recommend.runtime.moto_warmup import build_backends_first

    if patch_moto():
        bound_history()
        snapshot_registries()
        lock_queue_changes()
        answer_sqs_fast()  # these before the counter, which then counts in front of them
        answer_sns_fast()
        answer_ses_fast()
    keep_connections_alive()
    read_headers_directly()
    silence_access_log()
    serve_without_flask_debug()
    build_backends_first()
    broker_calls.install()  # GET /_ec/calls: what the broker served, for benches and tests
    moto_server(sys.argv[1:])


if __name__ == "__main__":
    main()
