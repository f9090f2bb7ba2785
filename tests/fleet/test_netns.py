"""What a killed fleet run leaves behind is removed by the next one, and only that."""

from __future__ import annotations

import subprocess

import pytest

from tests.fleet.conftest import require_netns
from tests.fleet.netns import NAME_PREFIX, Network, ip, remove_leftovers, run_tag

pytestmark = pytest.mark.fleet


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_the_namespaces_links_and_processes_of_a_dead_run_are_removed() -> None:
    require_netns()
    dead = Network(tag=f"{NAME_PREFIX}{_dead_pid():06x}")
    alive = Network(tag=run_tag())
    try:
        for network in (dead, alive):
            network.create()
            network.add_host("host")
        leftover = dead.hosts["host"]
        sleeper = subprocess.Popen(leftover.command("sleep", "300"))

        removed = remove_leftovers()

        assert sleeper.wait(10) != 0  # killed with its namespace
        assert set(removed) >= {leftover.namespace, dead.bridge}
        namespaces = ip("netns", "list")
        assert leftover.namespace not in namespaces
        assert alive.hosts["host"].namespace in namespaces  # a live run's are kept
        assert dead.bridge not in ip("-o", "link", "show")
    finally:
        dead.destroy()
        alive.destroy()
