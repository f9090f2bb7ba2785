"""``python -m ec_recommend.runtime.moto_main``: moto's server for ``up``,
with its per-message retention check made O(1).

For every message it hands out, moto's SQS checks the queue's retention
period by computing all of the queue's attributes, which counts every
message the queue holds; receiving a backlog of n messages then costs
O(n²), and the local broker, not the system, set how fast a backlog
drained. The patch reads the one attribute it needs. Its history is bounded
(``moto_memory``) and connections are kept alive (``moto_keepalive``). The
patches apply only to the moto major version they were written for; any
other runs as it is.
"""

from __future__ import annotations

import sys
from typing import Any

from ec_recommend.runtime import broker_calls

PATCHED_MAJOR = "5"


def _retention_check(self: Any, queue_name: str, message: Any) -> bool:
    from moto.core.utils import unix_time

    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > unix_time())


def patch_moto() -> bool:
    """Apply the patch; False when this moto is not the version it fits."""
    import moto
    from moto.sqs.models import SQSBackend

    if moto.__version__.split(".")[0] != PATCHED_MAJOR:
        return False
    if not hasattr(SQSBackend, "is_message_valid_based_on_retention_period"):
        return False
    SQSBackend.is_message_valid_based_on_retention_period = _retention_check  # type: ignore[method-assign]
    return True


def main() -> None:
    from moto.server import main as moto_server

    from ec_recommend.runtime.moto_keepalive import keep_connections_alive
    from ec_recommend.runtime.moto_memory import bound_history

    if patch_moto():
        bound_history()
    keep_connections_alive()
    broker_calls.install()  # GET /_ec/calls: what the broker served, for benches and tests
    moto_server(sys.argv[1:])


if __name__ == "__main__":
    main()
