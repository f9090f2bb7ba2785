"""Whose clock bounds a call: the mesh's own timeout, or the caller's budget.

A call ends at the earlier of two deadlines. The mesh's (the target's
``timeout``, and ``retry_timeout`` per try) says how long a healthy service
takes: running past it is the service's failure. The caller's (the deadline
that travelled in, e.g. a client's ``X-Request-Timeout``, or an explicit
per-call timeout) says how long the caller cares: running past it says
nothing about the service, so it must never trip a breaker or eject an
endpoint. ``TryDeadline.callers`` records which of the two a try runs under.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grpclib.metadata import Deadline


@dataclass(frozen=True)
class TryDeadline:
    deadline: Deadline
    callers: bool  # the caller's budget ends this try, not the mesh's timeout

    def time_remaining(self) -> float:
        return self.deadline.time_remaining()


@dataclass(frozen=True)
class CallBudget:
    mesh: Deadline
    caller: Deadline | None

    @classmethod
    def start(
        cls, mesh_timeout: float, *, explicit: float | None, travelled: float | None
    ) -> CallBudget:
        """``explicit``: a timeout the calling code passed; ``travelled``: seconds
        left of the deadline that came in with the current call."""
        # the smaller of the two that are set (every call comes here: no list made)
        if explicit is None or travelled is None:
            limit = travelled if explicit is None else explicit
        else:
            limit = min(explicit, travelled)
        caller = None if limit is None else Deadline.from_timeout(max(limit, 0.0))
        return cls(Deadline.from_timeout(max(mesh_timeout, 0.0)), caller)

    def time_remaining(self) -> float:
        mesh = self.mesh.time_remaining()
        return mesh if self.caller is None else min(mesh, self.caller.time_remaining())

    def next_try(self, cap: float | None) -> TryDeadline:
        """The deadline of the next try; ``cap`` is the mesh's per-try bound, if any."""
        mesh = self.mesh.time_remaining()
        if cap is not None:
            mesh = min(mesh, cap)
        caller = math.inf if self.caller is None else self.caller.time_remaining()
        # a tie goes to the caller: it asked for no more than the mesh allows
        if caller <= mesh:
            return TryDeadline(Deadline.from_timeout(caller), callers=True)
        return TryDeadline(Deadline.from_timeout(mesh), callers=False)
