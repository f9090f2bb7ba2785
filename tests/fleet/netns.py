"""Hosts on a private bridge: one network namespace per host, joined by veth pairs.

Every name this run creates starts with ``ecf`` and the pytest process id in
hex (``ecf01a2b3``), so two runs never collide and a run can tell its own
leftovers from those of a dead run: ``remove_leftovers`` deletes the
namespaces (after killing what still runs in them) and links of every run
whose process is gone. Interface names stay within the kernel's 15
characters.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

NAME_PREFIX = "ecf"
_OWNED = re.compile(rf"^{NAME_PREFIX}([0-9a-f]{{6}})")


def run_tag() -> str:
    """What every name this run creates starts with."""
    return f"{NAME_PREFIX}{os.getpid():06x}"


class NetnsUnavailable(RuntimeError):
    """This machine cannot build namespaces (not root, no iproute2, no kernel support)."""


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    command = ["ip", *args]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done.stdout


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "the fleet test builds network namespaces: run it as root"
    if shutil.which("ip") is None:
        return "the fleet test needs `ip` (iproute2)"
    probe = f"{run_tag()}-probe"
    try:
        ip("netns", "add", probe)
    except RuntimeError as exc:
        return f"`ip netns add` fails here: {exc}"
    ip("netns", "del", probe, check=False)
    return None


def left_by_dead_run(name: str) -> bool:
    """Whether ``name`` was made by a fleet run whose process is gone."""
    owner = _OWNED.match(name)
    if owner is None:
        return False
    try:
        os.kill(int(owner.group(1), 16), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _kill_namespace(namespace: str) -> None:
    """SIGKILL whatever still runs in ``namespace``, then delete it."""
    for pid in ip("netns", "pids", namespace, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    ip("netns", "del", namespace, check=False)


def remove_leftovers() -> list[str]:
    """Delete the namespaces and links of fleet runs whose process is gone."""
    removed = []
    for line in ip("netns", "list", check=False).splitlines():
        namespace = line.split()[0] if line.strip() else ""
        if left_by_dead_run(namespace):
            _kill_namespace(namespace)
            removed.append(namespace)
    for line in ip("-o", "link", "show", check=False).splitlines():
        # "12: ecf01a2b3br: <...>" or "13: ecf01a2b3h4@if12: <...>"
        name = line.split(":", 2)[1].strip().split("@")[0] if ":" in line else ""
        if left_by_dead_run(name):
            ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_subnet() -> str:
    """A 10.213.X.0/24 no interface of this machine uses yet (its first three octets)."""
    used = ip("-o", "-4", "addr", "show", check=False)
    candidates = list(range(1, 255))
    random.shuffle(candidates)
    for third in candidates:
        base = f"10.213.{third}"
        if f" {base}." not in used:
            return base
    raise NetnsUnavailable("no free 10.213.X.0/24 subnet")


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host's namespace (the root namespace when it has none)."""
        if not self.namespace:
            return list(argv)
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Network:
    """A bridge in the root namespace (its address is ``root_address``) and hosts on it."""

    tag: str = field(default_factory=run_tag)
    base: str = field(default_factory=_free_subnet)
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    @property
    def root_address(self) -> str:
        return f"{self.base}.1"

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 2  # .1 is the root namespace
        host = Host(name, f"{self.tag}-{name}", f"{self.base}.{index}")
        outside, inside = f"{self.tag}h{index}", f"{self.tag}n{index}"
        ip("netns", "add", host.namespace)
        self.hosts[name] = host
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        ip("link", "set", inside, "netns", host.namespace)
        ip("link", "set", inside, "name", "eth0", namespace=host.namespace)
        ip("addr", "add", f"{host.address}/24", "dev", "eth0", namespace=host.namespace)
        ip("link", "set", "eth0", "up", namespace=host.namespace)
        ip("link", "set", "lo", "up", namespace=host.namespace)
        return host

    def destroy(self) -> None:
        """Kill what runs in the hosts, delete them (their veths go with them), then the bridge."""
        for host in self.hosts.values():
            _kill_namespace(host.namespace)
        self.hosts.clear()
        ip("link", "del", self.bridge, check=False)


@contextlib.contextmanager
def private_network() -> Iterator[Network]:
    """A fresh bridge until the block ends; everything on it is removed, whatever happens."""
    remove_leftovers()
    network = Network()
    try:
        network.create()
        yield network
    finally:
        network.destroy()
