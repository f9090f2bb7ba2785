"""Configuration is read once, validated, and names the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec_recommend.config import Config, ConfigError, Endpoint
from ec_recommend.config.events import events_config
from ec_recommend.config.values import Section


def test_defaults_use_sqlite_under_the_data_dir() -> None:
    config = Config.from_env({})
    assert config.storage.database_url is None
    assert config.storage.data_dir == Path(".ec-data")
    assert config.rpc.pool_size == 2


def test_environment_overrides_file(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("rpc:\n  pool_size: 3\n  endpoints:\n    product: [a:1, b:2]\n")
    config = Config.from_env({"EC_RPC_POOL_SIZE": "4"}, file=file)
    assert config.rpc.pool_size == 4
    assert config.rpc.endpoints["product"] == (Endpoint("a", 1), Endpoint("b", 2))


def test_endpoints_from_environment() -> None:
    config = Config.from_env({"EC_ENDPOINTS_USER": "10.0.0.1:5001,10.0.0.2:5001"})
    assert [str(e) for e in config.rpc.endpoints["user"]] == ["10.0.0.1:5001", "10.0.0.2:5001"]


def test_hosted_services_call_in_process_unless_told_otherwise() -> None:
    assert Config.from_env({}).rpc.in_process is True
    assert Config.from_env({"EC_RPC_IN_PROCESS": "0"}).rpc.in_process is False


def test_the_transport_between_processes_is_the_platform_s_unless_named() -> None:
    assert Config.from_env({}).rpc.transport is None  # transports.DEFAULT
    assert Config.from_env({"EC_RPC_TRANSPORT": "grpclib"}).rpc.transport == "grpclib"
    assert Config.from_env({"EC_RPC_TRANSPORT": "grpcio"}).rpc.transport == "grpcio"


def test_the_database_budget_of_a_process() -> None:
    default = Config.from_env({}).storage
    assert (default.pool_size, default.max_overflow, default.pool_timeout) == (10, 10, 5.0)
    env = {"EC_DB_POOL_SIZE": "4", "EC_DB_MAX_OVERFLOW": "0", "EC_DB_POOL_TIMEOUT": "0.5"}
    storage = Config.from_env(env).storage
    assert (storage.pool_size, storage.max_overflow, storage.pool_timeout) == (4, 0, 0.5)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"EC_RPC_POOL_SIZE": "zero"}, "rpc.pool_size"),
        ({"EC_DB_MAX_OVERFLOW": "-1"}, "storage.max_overflow"),
        ({"EC_DB_POOL_TIMEOUT": "0"}, "storage.pool_timeout"),
        ({"EC_RPC_POOL_SIZE": "0"}, "rpc.pool_size"),
        ({"EC_RPC_TRANSPORT": "h2"}, "rpc.transport"),
        ({"EC_ENDPOINTS_USER": "nohostport"}, "EC_ENDPOINTS_USER"),
        ({"EC_PROFILE": "staging"}, "profile"),
        ({"EC_PAYMENT_RESOLVE_AFTER": "5"}, "order.payment_resolve_after"),
        ({"EC_PAYMENT_CALL_TIMEOUT": "-1"}, "order.payment_call_timeout"),
    ],
)
def test_bad_values_name_their_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Config.from_env(env)


def test_unknown_service_in_file_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("rpc:\n  ports:\n    prodcut: 5000\n")
    with pytest.raises(ConfigError, match="prodcut"):
        Config.from_env({}, file=file)


def test_payment_attempt_timing_from_environment() -> None:
    config = Config.from_env({"EC_PAYMENT_CALL_TIMEOUT": "2", "EC_PAYMENT_RESOLVE_AFTER": "6"})
    assert (config.order.payment_call_timeout, config.order.payment_resolve_after) == (2.0, 6.0)


def test_sandbox_latency_from_environment() -> None:
    assert Config.from_env({}).order.sandbox_latency == 0.0
    assert Config.from_env({"EC_SANDBOX_PAYMENT_LATENCY": "0.3"}).order.sandbox_latency == 0.3
    with pytest.raises(ConfigError, match="sandbox_latency"):
        Config.from_env({"EC_SANDBOX_PAYMENT_LATENCY": "-1"})


def test_consumer_batch_linger_from_environment() -> None:
    assert Config.from_env({}).events.consumer_batch_linger == 0.1
    assert (
        Config.from_env({"EC_CONSUMER_BATCH_LINGER": "0.05"}).events.consumer_batch_linger == 0.05
    )
    assert Config.from_env({"EC_CONSUMER_BATCH_LINGER": "0"}).events.consumer_batch_linger == 0.0
    with pytest.raises(ConfigError, match="consumer_batch_linger"):
        Config.from_env({"EC_CONSUMER_BATCH_LINGER": "-1"})


def test_relay_pacing_from_environment() -> None:
    config = Config.from_env({"EC_RELAY_BATCH": "5", "EC_RELAY_CONCURRENCY": "3"})
    assert (config.events.relay_batch_size, config.events.relay_concurrency) == (5, 3)
    assert Config.from_env({}).events.relay_concurrency == 1  # moto locally
    production = events_config(Section("events", {}, {}), "production")
    assert production.relay_concurrency == 8  # AWS is latency-bound
    with pytest.raises(ConfigError, match="relay_concurrency"):
        Config.from_env({"EC_RELAY_CONCURRENCY": "0"})


def test_edge_read_timeout_and_call_identity_key_from_environment() -> None:
    assert Config.from_env({}).gateway.read_timeout == 30.0
    assert Config.from_env({}).tls.call_key is None  # the data dir's key
    key = "ab" * 32
    config = Config.from_env({"EC_GATEWAY_READ_TIMEOUT": "5", "EC_CALL_IDENTITY_KEY": key})
    assert config.gateway.read_timeout == 5.0
    assert config.tls.call_key == bytes.fromhex(key)
    with pytest.raises(ConfigError, match="EC_CALL_IDENTITY_KEY"):
        Config.from_env({"EC_CALL_IDENTITY_KEY": "abcd"})  # too short to sign with


def test_consumers_long_poll_briefly_locally_where_a_stop_waits_one_out() -> None:
    def wait(profile: str, **env: str) -> int:
        return events_config(Section("events", {}, env), profile).consumer_wait_seconds

    assert wait("local") == 2
    assert wait("production") == 10
    assert wait("local", EC_CONSUMER_WAIT_SECONDS="10") == 10
