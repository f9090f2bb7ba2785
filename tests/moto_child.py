"""A moto server child for synchronous fixtures, from either entry point.

Synchronous on purpose, so fixtures of any event loop scope can use it;
``ec_recommend.runtime.local_aws.moto_server`` is the async counterpart.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ec_recommend.runtime.local_aws import LocalAws, free_port

# ``up``'s broker (moto with the project's patches), and moto as shipped.
LOCAL_BROKER = "ec_recommend.runtime.moto_main"
STOCK_MOTO = "moto.server"


@contextmanager
def moto_child(module: str = LOCAL_BROKER, ready_timeout: float = 30.0) -> Iterator[LocalAws]:
    """``python -m module`` on a free port, once it answers; stopped on exit."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", module, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{module} did not answer within {ready_timeout}s")
                try:  # the next try after a tenth of a second, at once if the child dies
                    child.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    continue
                pytest.fail(f"{module} exited with code {child.returncode} before answering")
        yield LocalAws(endpoint_url=endpoint)
    finally:
        child.terminate()
        child.wait(10)
