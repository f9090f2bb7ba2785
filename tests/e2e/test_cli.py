"""The ``ec-recommend`` command as a newcomer meets it: each mistake is one line, quickly.

Every case runs the installed command in a subprocess, as typed at a shell.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import ec_recommend
from ec_recommend.runtime.registry import CONSUMERS, available_services
from tests.e2e.conftest import RunningSystem, up_process

# Startup work before the check (config, imports) takes about a second; a
# failure that waited for the system to start first would take several.
QUICK = 8.0


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    return subprocess.run(
        [sys.executable, "-m", "ec_recommend.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**environment, **(env or {})},
        cwd=cwd,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ec-recommend {ec_recommend.__version__}"


def test_help_lists_each_command_once() -> None:
    text = cli("--help").stdout
    for command in ("up", "serve", "provision", "dlq", "events", "certs"):
        assert sum(line.split()[:1] == [command] for line in text.splitlines()) == 1, text


def test_serve_help_lists_every_service_consumer_and_the_gateway() -> None:
    text = cli("serve", "--help", env={"COLUMNS": "200"}).stdout
    for name in [*available_services(), *CONSUMERS, "gateway"]:
        assert name in text


def test_up_help_states_its_defaults() -> None:
    text = cli("up", "--help", env={"COLUMNS": "200"}).stdout
    assert "8080" in text
    assert ".ec-data" in text
    assert "127.0.0.1" in text


def test_up_on_a_taken_port_says_so_at_once(taken_port: int, tmp_path: Path) -> None:
    started = time.monotonic()
    result = cli("up", "--port", str(taken_port), "--data-dir", str(tmp_path))
    assert time.monotonic() - started < QUICK
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"port {taken_port}" in line
    assert "--port" in line
    assert not (tmp_path / "endpoints.json").exists()


def test_up_honours_the_gateway_port_variable(taken_port: int, tmp_path: Path) -> None:
    result = cli("up", "--data-dir", str(tmp_path), env={"EC_GATEWAY_PORT": str(taken_port)})
    assert result.returncode == 2
    assert f"port {taken_port}" in one_line(result.stderr)


def test_serve_gateway_without_a_pool_names_the_variables(tmp_path: Path) -> None:
    result = cli("serve", "user", "product", "gateway", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "EC_COGNITO_USER_POOL_ID" in line
    assert "EC_COGNITO_CLIENT_ID" in line


def test_provision_against_nothing_names_the_endpoint(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    result = cli("provision", env={"EC_AWS_ENDPOINT_URL": endpoint}, cwd=tmp_path)
    assert time.monotonic() - started < QUICK
    assert result.returncode == 1
    assert endpoint in one_line(result.stderr)


def test_dlq_list_finds_the_running_up(running_system: RunningSystem) -> None:
    """No EC_AWS_ENDPOINT_URL: the command reads endpoints.json from --data-dir."""
    result = cli("dlq", "list", "--data-dir", str(running_system.data_dir))
    assert result.returncode == 0, result.stderr
    assert "order-processing-dlq\t" in result.stdout


def test_dlq_list_in_the_default_data_dir(running_system: RunningSystem) -> None:
    """Run from where `up` was started: `.ec-data` is the default data dir."""
    project = running_system.data_dir.parent / "project"
    (project / ".ec-data").mkdir(parents=True, exist_ok=True)
    (project / ".ec-data" / "endpoints.json").write_bytes(
        (running_system.data_dir / "endpoints.json").read_bytes()
    )
    result = cli("dlq", "list", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "order-processing-dlq\t" in result.stdout


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(p) for p in (task / "children").read_text(encoding="ascii").split())
    return found


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return True
    return "\nState:\tZ" in status  # exited, waiting to be reaped by init


def test_sighup_stops_up_like_sigterm_and_leaves_no_process(tmp_path: Path) -> None:
    with up_process(tmp_path, env={"EC_LOG_LEVEL": "INFO"}) as running:
        children = _children(running.process.pid)
        assert children, "up runs its local AWS as a child"
        started = time.monotonic()
        running.process.send_signal(signal.SIGHUP)
        code = running.process.wait(30)
        stopped_in = time.monotonic() - started
    assert code == 0
    # idle, a stop waits out one short long poll; it took 10 s before
    assert stopped_in < 6, f"stopping took {stopped_in:.1f} s"
    assert not (tmp_path / "endpoints.json").exists()
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in children):
        assert time.monotonic() < deadline, f"left running: {children}"
        time.sleep(0.1)
    assert "stopping: letting events in flight" in (tmp_path / "up.log").read_text()


def test_a_consumer_without_its_services_names_the_variable(tmp_path: Path) -> None:
    # an AWS endpoint is set, so the consumer gets as far as dialling the product service
    result = cli(
        "serve", "inventory", env={"EC_AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, cwd=tmp_path
    )
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "'product'" in line
    assert "EC_ENDPOINTS_" in line


def test_up_on_a_terminal_prints_a_short_summary(tmp_path: Path) -> None:
    """stdout a terminal: a few lines for a person instead of the JSON line for tools."""
    primary, secondary = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ec_recommend.cli",
            "up",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        stdout=secondary,
        stderr=subprocess.DEVNULL,
        env={**environment, "EC_LOG_LEVEL": "WARNING"},
    )
    os.close(secondary)
    shown = b""
    try:
        deadline = time.monotonic() + 90
        while b"Stop with Ctrl-C." not in shown:
            assert child.poll() is None, shown
            assert time.monotonic() < deadline, shown
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                shown += os.read(primary, 4096)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)
        os.close(primary)
    text = shown.decode()
    assert '{"event"' not in text
    assert "/api/v1/openapi.json" in text
    assert "customer@example.com" in text
    assert str(tmp_path / "endpoints.json") in text
