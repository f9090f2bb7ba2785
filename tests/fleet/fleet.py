"""The system deployed as a fleet of hosts on a private bridge.

One process per host, started as a deployment would start it: ``ec-recommend
serve <services>`` with everything it needs in ``EC_*`` variables (where to
listen, where every other service is, the database, the broker, the
certificates it owns). PostgreSQL and Redis are the machine's own servers,
reached through a forwarder on the bridge's address; moto runs on a host of
its own. Every process dies with the test (its parent-death signal), and the
network goes with the namespaces.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ec_recommend.runtime.registry import CONSUMERS
from tests.fleet.netns import Host, Network, private_network

REGION = "ap-northeast-1"
BROKER_PORT = 5000
GATEWAY_PORT = 8080
METRICS_PORT = 9464
# below the ephemeral range (32768-60999), so no outgoing connection holds one
RPC_PORTS = {
    "user": 7001,
    "product": 7002,
    "order": 7003,
    "cart": 7004,
    "search": 7005,
    "recommendation": 7006,
}
# host name -> what it runs: the layout of a small production deployment
LAYOUT: dict[str, list[str]] = {
    "user": ["user"],
    "product-1": ["product"],
    "product-2": ["product"],
    "order": ["order", "cart"],
    "search": ["search", "recommendation"],
    "consumers": list(CONSUMERS),
    "gateway-a": ["gateway"],
    "gateway-b": ["gateway"],
}
START_TIMEOUT = 90.0  # seconds for a host to print its ready line (2 busy cores)
_PR_SET_PDEATHSIG = 1


def _dies_with_us() -> None:
    """In the child before exec: SIGTERM when the test process dies, even by kill -9."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class HostProcess:
    """One host's process, its command, environment and log files."""

    host: Host
    argv: list[str]
    env: dict[str, str]
    directory: Path
    child: subprocess.Popen[bytes] | None = None
    lines_before_start: int = 0  # stdout lines of earlier runs on this host

    @property
    def stdout(self) -> Path:
        return self.directory / "stdout.log"

    @property
    def stderr(self) -> Path:
        return self.directory / "stderr.log"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lines_before_start = len(self._stdout_lines())
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            self.child = subprocess.Popen(
                self.host.command(*self.argv),
                stdout=out,
                stderr=err,
                env=self.env,
                preexec_fn=_dies_with_us,
            )

    def ready(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """The ``ready`` line the process printed since it (re)started, once it has."""
        assert self.child is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise RuntimeError(
                    f"{self.host.name} exited with {self.child.returncode}: {self.tail()}"
                )
            for line in self._stdout_lines()[self.lines_before_start :]:
                if line.startswith("{") and json.loads(line).get("event") == "ready":
                    return dict(json.loads(line))
            time.sleep(0.1)
        raise TimeoutError(f"{self.host.name} not ready within {timeout}s: {self.tail()}")

    def _stdout_lines(self) -> list[str]:
        return self.stdout.read_text(encoding="utf-8").splitlines() if self.stdout.exists() else []

    def signal(self, signum: int) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def usage(self) -> tuple[float, float]:
        """Resident memory (MB) and CPU time (seconds) of the process so far, from /proc."""
        assert self.child is not None
        proc = Path(f"/proc/{self.child.pid}")
        rss_kb = next(
            int(line.split()[1])
            for line in (proc / "status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        # fields after the command's ")": utime and stime are the 12th and 13th
        ticks = (proc / "stat").read_text().rpartition(")")[2].split()[11:13]
        return rss_kb / 1024, sum(int(t) for t in ticks) / os.sysconf("SC_CLK_TCK")

    def wait(self) -> int:
        assert self.child is not None
        return self.child.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.child is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.child.wait(timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()

    def tail(self, lines: int = 15) -> str:
        if not self.stderr.exists():
            return ""
        text = self.stderr.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Fleet:
    network: Network
    directory: Path
    certs: Path
    postgres_url: str
    redis_url: str
    processes: dict[str, HostProcess] = field(default_factory=dict)
    cognito: Mapping[str, str] = field(default_factory=dict)  # the pool's ids, from provision
    # Every process of one system signs and checks call identities with one key,
    # as a deployment gives it (a Kubernetes Secret, say).
    call_key: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def tag(self) -> str:
        return self.network.tag

    @property
    def broker_url(self) -> str:
        return f"http://{self.network.hosts['broker'].address}:{BROKER_PORT}"

    def gateway_url(self, host: str) -> str:
        return f"http://{self.network.hosts[host].address}:{GATEWAY_PORT}"

    def metrics_url(self, host: str) -> str:
        return f"http://{self.network.hosts[host].address}:{METRICS_PORT}/metrics"

    def endpoint(self, host: str, service: str) -> str:
        return f"{self.network.hosts[host].address}:{RPC_PORTS[service]}"

    def endpoints(self, service: str) -> str:
        return ",".join(
            self.endpoint(host, service) for host, runs in LAYOUT.items() if service in runs
        )

    def common_env(self) -> dict[str, str]:
        """What every host is told: the broker, the user pool, the database, the
        call-identity key, the log level."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EC_", "AWS_"))}
        env.update(
            {
                "EC_LOG_LEVEL": "WARNING",
                "EC_LOG_FORMAT": "json",
                "EC_AWS_ENDPOINT_URL": self.broker_url,
                "EC_AWS_REGION": REGION,
                "EC_EVENTS_PREFIX": f"{self.tag}-",
                "EC_COGNITO_ENDPOINT_URL": self.broker_url,
                "EC_COGNITO_REGION": REGION,
                "EC_DATABASE_URL": self.postgres_url,
                "EC_SCHEMA_PREFIX": f"{self.tag}_",
                "EC_CONSUMER_WAIT_SECONDS": "1",
                "EC_CALL_IDENTITY_KEY": self.call_key,
                **self.cognito,
            }
        )
        return env

    def host_env(self, host: Host, runs: list[str]) -> dict[str, str]:
        env = self.common_env()
        certs = self._host_certificates(host, runs)
        env.update(
            {
                "EC_TLS_MODE": "STRICT",
                "EC_TLS_CA": str(certs / "ca.crt"),
                "EC_TLS_CERT_DIR": str(certs),
                "EC_RPC_HOST": host.address,
                "EC_METRICS_HOST": host.address,
                "EC_METRICS_PORT": str(METRICS_PORT),
            }
        )
        for service in RPC_PORTS:
            if service in runs:
                env[f"EC_PORT_{service.upper()}"] = str(RPC_PORTS[service])
            else:
                env[f"EC_ENDPOINTS_{service.upper()}"] = self.endpoints(service)
        if "gateway" in runs:
            env.update(
                {
                    "EC_GATEWAY_HOST": host.address,
                    "EC_GATEWAY_PORT": str(GATEWAY_PORT),
                    "EC_RATE_LIMIT_BACKEND": "redis",
                    "EC_REDIS_URL": self.redis_url,
                    # the test's clients say who they are in X-Forwarded-For
                    "EC_TRUSTED_PROXIES": self.network.root_address,
                    # the replica test's load measures the mesh, not the per-user limit
                    "EC_RATE_LIMIT_AUTHENTICATED": "100000",
                }
            )
        return env

    def _host_certificates(self, host: Host, runs: list[str]) -> Path:
        """A host holds the CA and the certificates of what it runs, nothing else."""
        own = self.directory / host.name / "certs"
        own.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.certs / "ca.crt", own / "ca.crt")
        for name in runs:
            for suffix in (".crt", ".key"):
                shutil.copy(self.certs / f"{name}{suffix}", own / f"{name}{suffix}")
        return own

    def add(self, name: str, runs: list[str]) -> HostProcess:
        host = self.network.hosts[name]
        process = HostProcess(
            host,
            [
                sys.executable,
                "-m",
                "ec_recommend.cli",
                "serve",
                *runs,
                "--data-dir",
                str(self.directory / name / "data"),
            ],
            self.host_env(host, runs),
            self.directory / name,
        )
        self.processes[name] = process
        return process

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()


def _ec(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ec_recommend.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ec-recommend {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def _pool_settings(provision_output: str) -> dict[str, str]:
    """``EC_COGNITO_USER_POOL_ID=... EC_COGNITO_CLIENT_ID=...`` from provision's last lines."""
    for line in provision_output.splitlines():
        if line.startswith("cognito pool"):
            pairs = (word.split("=", 1) for word in line.split() if "=" in word)
            return dict(pairs)
    raise RuntimeError(f"provision printed no pool: {provision_output}")


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _forwarded(url: str, bridge_address: str, default_port: int) -> tuple[str, str]:
    """The forwarder's route for the server at ``url``, and its URL as the hosts see it."""
    parsed = urlparse(url)
    port = parsed.port or default_port
    on_bridge = f"{bridge_address}:{port}"
    credentials, at, _ = parsed.netloc.rpartition("@")
    bridged = parsed._replace(netloc=f"{credentials}{at}{on_bridge}").geturl()
    return f"{on_bridge}={parsed.hostname}:{port}", bridged


def _root_process(directory: Path, argv: list[str]) -> HostProcess:
    return HostProcess(Host(directory.name, "", ""), argv, dict(os.environ), directory)


@contextmanager
def deployed_fleet(directory: Path, postgres_url: str, redis_url: str) -> Iterator[Fleet]:
    """Build the network, start every host and wait until each is ready; tear it all down."""
    with private_network() as network:
        for name in ["broker", *LAYOUT]:
            network.add_host(name)
        postgres_route, postgres_on_bridge = _forwarded(postgres_url, network.root_address, 5432)
        redis_route, redis_on_bridge = _forwarded(redis_url, network.root_address, 6379)
        fleet = Fleet(network, directory, directory / "certs", postgres_on_bridge, redis_on_bridge)
        forwarder = fleet.processes["forwarder"] = _root_process(
            directory / "forwarder",
            [
                sys.executable,
                str(Path(__file__).with_name("forwarder.py")),
                postgres_route,
                redis_route,
            ],
        )
        broker_host = network.hosts["broker"]
        broker = fleet.processes["broker"] = HostProcess(
            broker_host,
            [
                sys.executable,
                "-m",
                "ec_recommend.runtime.moto_main",
                "-H",
                broker_host.address,
                "-p",
                str(BROKER_PORT),
            ],
            dict(os.environ),
            directory / "broker",
        )
        try:
            forwarder.start()
            broker.start()
            forwarder.ready()
            _ec(dict(os.environ), "certs", "init", "--dir", str(fleet.certs))
            _wait_http(f"{fleet.broker_url}/moto-api/data.json", START_TIMEOUT)
            fleet.cognito = _pool_settings(_ec(fleet.common_env(), "provision"))
            for name, runs in LAYOUT.items():
                fleet.add(name, runs).start()
            for name in LAYOUT:
                fleet.processes[name].ready()
            yield fleet
        finally:
            fleet.stop()
