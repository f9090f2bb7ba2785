"""CPU per call for the micro-benches that time one function in this process."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def cpu_per_call(call: Callable[[], Any], seconds: float) -> float:
    """Microseconds of process CPU per call, over about ``seconds`` of CPU."""
    n = 1
    while True:
        start = time.process_time()
        for _ in range(n):
            call()
        spent = time.process_time() - start
        if spent >= seconds:
            return spent / n * 1e6
        n *= 2
