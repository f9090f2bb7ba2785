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
directories, a response class's methods) is kept. Its history is bounded
(``moto_memory``), its registries and each queue's messages are safe for requests
answered at once (``moto_threads``), connections are kept alive
(``moto_keepalive``), it writes no access log and it builds the backends ``up`` uses before it
listens (``moto_warmup``). The patches apply only to the moto major version
they were written for; any other runs as it is.
"""

from __future__ import annotations

import functools
import os
import string
import sys
import time
from typing import Any

from ec_recommend.runtime import broker_calls

PATCHED_MAJOR = "5"
# the names moto.sqs.models imported that the patch replaces
PATCHED_NAMES = (
    "unix_time",
    "unix_time_millis",
    "camelcase_to_underscores",
    "generate_receipt_handle",
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
    _answer_requests_from_memory()
    return True


# moto's receipt handle: 185 lowercase letters, drawn one random.choice at a
# time (~6 % of the broker's samples); one urandom call maps bytes to letters.
_RECEIPT_LENGTH = 185
_LETTERS = bytes(ord(string.ascii_lowercase[i % 26]) for i in range(256))


def receipt_handle() -> str:
    """A receipt handle as moto makes them, unique for as long as SQS needs."""
    return os.urandom(_RECEIPT_LENGTH).translate(_LETTERS).decode("ascii")


def _answer_requests_from_memory() -> None:
    """Two answers moto works out again on every request: which directories
    its package has (a listdir and an isdir each, to route the request; ~7 %)
    and which methods a response class has (``inspect.getmembers``; ~2.5 %).
    Neither changes while the server runs."""
    import moto.backends as backends
    import moto.core.responses as responses

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]
    names = vars(responses)
    names["method_names_from_class"] = functools.lru_cache(maxsize=None)(
        names["method_names_from_class"]
    )


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


def main() -> None:
    from moto.server import main as moto_server

    from ec_recommend.runtime.moto_keepalive import keep_connections_alive
    from ec_recommend.runtime.moto_memory import bound_history
    from ec_recommend.runtime.moto_threads import lock_queue_changes, snapshot_registries
    from ec_recommend.runtime.moto_warmup import build_backends_first

    if patch_moto():
        bound_history()
        snapshot_registries()
        lock_queue_changes()
    keep_connections_alive()
    silence_access_log()
    build_backends_first()
    broker_calls.install()  # GET /_ec/calls: what the broker served, for benches and tests
    moto_server(sys.argv[1:])


if __name__ == "__main__":
    main()
