"""What a client may do after a request ran out of time.

A read that times out changed nothing. A write may have been applied before
the time ran out (the order created, the card charged): its 504 says the
outcome is unknown, and whether sending it again is safe, which it is when
the endpoint honours ``Idempotency-Key`` and the request carried one (the
retry returns the first result instead of doing the work twice).
"""

from __future__ import annotations

from ec_recommend.edge.gateway.routes import Endpoint
from ec_recommend.platform import errors

READS = frozenset({"GET", "HEAD", "OPTIONS"})

_SAFE = "retrying with the same Idempotency-Key is safe: it returns the first result"
_CHECK = "check before retrying"


class UnknownOutcome(errors.DeadlineExceeded):
    """A write ran out of time and may or may not have been applied."""


def timed_out(endpoint: Endpoint, has_key: bool) -> errors.DeadlineExceeded:
    """The error a request that ran out of time answers with."""
    if endpoint.method in READS:
        return errors.DeadlineExceeded("the request did not finish in time")
    safe = endpoint.idempotent and has_key
    advice = _SAFE if safe else _CHECK
    if endpoint.idempotent and not has_key:
        advice += ", and send an Idempotency-Key to make retries safe"
    return UnknownOutcome(
        f"the request did not finish in time and may have been applied; {advice}",
        outcome="unknown",
        safe_to_retry="true" if safe else "false",
    )
