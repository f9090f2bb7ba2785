"""``ec-recommend up`` as a child process that a fault scenario may kill -9.

Unlike the session-wide system of tests/e2e, each scenario starts its own,
with its own settings (short leases and timeouts, so a test can wait for them
to run out) and its own data directory, which a restart reuses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ec_recommend.config import StorageConfig

START_TIMEOUT = 90.0


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), e.g. the local moto server."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text(encoding="ascii")
            found.extend(int(p) for p in text.split())
    except OSError:
        pass
    return found


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class UpProcess:
    """One ``up`` on ``data_dir``; ``kill9`` and ``start`` again to crash and restart."""

    data_dir: Path
    env: Mapping[str, str]
    process: subprocess.Popen[bytes] | None = None
    endpoints: dict[str, Any] = field(default_factory=dict)
    _orphans: list[int] = field(default_factory=list)  # children a kill -9 left behind

    @property
    def gateway_url(self) -> str:
        return str(self.endpoints["gateway_url"])

    @property
    def storage(self) -> StorageConfig:
        """Where this system keeps its data (as the invariants read it)."""
        return StorageConfig(
            data_dir=self.data_dir,
            database_url=self.env.get("EC_DATABASE_URL") or None,
            schema_prefix=self.env.get("EC_SCHEMA_PREFIX", ""),
            pool_size=2,
        )

    def start(self) -> None:
        endpoints_file = self.data_dir / "endpoints.json"
        endpoints_file.unlink(missing_ok=True)
        env = {**os.environ, **self.env}
        command = ["up", "--port", "0", "--data-dir", str(self.data_dir)]
        with (self.data_dir / "up.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ec_recommend.cli", *command],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not endpoints_file.exists():
            self._check_alive(deadline)
            time.sleep(0.2)
        self.endpoints = json.loads(endpoints_file.read_text(encoding="utf-8"))
        while not self._ready():
            self._check_alive(deadline)
            time.sleep(0.2)

    def _check_alive(self, deadline: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ec-recommend up did not start; see {self.data_dir / 'up.log'}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def kill9(self) -> None:
        """SIGKILL, as a crash: nothing runs its cleanup."""
        assert self.process is not None
        self._orphans.extend(_children(self.process.pid))
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()
        for pid in self._orphans:
            _kill(pid)
        self._orphans.clear()


@contextmanager
def running_up(data_dir: Path, env: Mapping[str, str]) -> Iterator[UpProcess]:
    up = UpProcess(data_dir, {"EC_TRUSTED_PROXIES": "127.0.0.1", "EC_LOG_LEVEL": "WARNING", **env})
    try:
        up.start()
        yield up
    finally:
        up.stop()
