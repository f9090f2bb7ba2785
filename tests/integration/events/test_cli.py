"""``ec-recommend provision`` and ``ec-recommend dlq`` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from ec_recommend.runtime.local_aws import LocalAws


def run(
    local_aws: LocalAws,
    prefix: str,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EC_AWS_ENDPOINT_URL": local_aws.endpoint_url,
        "EC_AWS_REGION": local_aws.region,
        "EC_EVENTS_PREFIX": prefix,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "ec_recommend.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def prefix() -> str:
    return f"cli{uuid.uuid4().hex[:8]}-"


def test_provision_twice_prints_creations_then_nothing(local_aws: LocalAws, prefix: str) -> None:
    first = run(local_aws, prefix, "provision")
    assert first.returncode == 0, first.stderr
    assert f"created queue {prefix}order-processing-queue" in first.stdout
    assert f"created topic {prefix}order-events" in first.stdout
    second = run(local_aws, prefix, "provision")
    assert second.returncode == 0, second.stderr
    assert "0 created, 0 updated" in second.stdout
    assert "created " not in second.stdout.replace("0 created", "")


def test_provision_creates_the_cognito_pool_once(local_aws: LocalAws, prefix: str) -> None:
    env = {"EC_COGNITO_ENDPOINT_URL": local_aws.endpoint_url, "EC_COGNITO_POOL_NAME": prefix}
    first = run(local_aws, prefix, "provision", env=env)
    assert first.returncode == 0, first.stderr
    pool_line = next(
        line for line in first.stdout.splitlines() if "EC_COGNITO_USER_POOL_ID=" in line
    )
    second = run(local_aws, prefix, "provision", env=env)
    assert second.returncode == 0, second.stderr
    assert pool_line in second.stdout.splitlines(), "the same pool and client, not new ones"


def test_dlq_commands(local_aws: LocalAws, prefix: str) -> None:
    assert run(local_aws, prefix, "provision").returncode == 0
    listed = run(local_aws, prefix, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "order-processing-dlq\t0" in listed.stdout
    unknown = run(local_aws, prefix, "dlq", "show", "no-such-queue")
    assert unknown.returncode == 2 and "unknown queue" in unknown.stderr
    declined = run(local_aws, prefix, "dlq", "purge", "order-processing-queue", stdin="n\n")
    assert declined.returncode == 1 and "nothing deleted" in declined.stdout
    purged = run(local_aws, prefix, "dlq", "purge", "order-processing-queue", "--yes")
    assert purged.returncode == 0 and "purged order-processing-dlq" in purged.stdout
    redriven = run(local_aws, prefix, "dlq", "redrive", "order-processing-dlq", "--max", "5")
    assert redriven.returncode == 0 and "moved 0 message(s)" in redriven.stdout


def test_without_an_endpoint_the_commands_refuse(prefix: str, local_aws: LocalAws) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EC_")}
    result = subprocess.run(
        [sys.executable, "-m", "ec_recommend.cli", "provision"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "EC_AWS_ENDPOINT_URL" in result.stderr
