"""Commands next to a running ``up`` find its local AWS in ``<data-dir>/endpoints.json``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec_recommend.config import Config, Endpoint
from ec_recommend.runtime.endpoints_file import read_endpoints, with_running_up, write_endpoints

RUNNING_UP = {
    "gateway_url": "http://127.0.0.1:8080",
    "aws_endpoint_url": "http://127.0.0.1:41234",
    "region": "ap-northeast-1",
    "cognito_user_pool_id": "ap-northeast-1_pool",
    "cognito_client_id": "client",
    "services": {"product": "127.0.0.1:41001", "order": "127.0.0.1:41002"},
}


def _config(data_dir: Path, **env: str) -> Config:
    return Config.from_env({"EC_DATA_DIR": str(data_dir), **env})


def test_commands_use_the_running_ups_aws(tmp_path: Path) -> None:
    write_endpoints(tmp_path, RUNNING_UP)
    config = with_running_up(_config(tmp_path))
    assert config.events.enabled
    assert config.events.endpoint_url == "http://127.0.0.1:41234"
    assert config.auth.endpoint_url == "http://127.0.0.1:41234"
    assert (config.auth.user_pool_id, config.auth.client_id) == ("ap-northeast-1_pool", "client")
    assert config.rpc.endpoints["product"] == (Endpoint("127.0.0.1", 41001),)


def test_configured_service_endpoints_win(tmp_path: Path) -> None:
    write_endpoints(tmp_path, RUNNING_UP)
    config = with_running_up(_config(tmp_path, EC_ENDPOINTS_ORDER="10.0.0.1:50051"))
    assert config.rpc.endpoints["order"] == (Endpoint("10.0.0.1", 50051),)
    assert config.rpc.endpoints["product"] == (Endpoint("127.0.0.1", 41001),)


def test_a_configured_endpoint_wins(tmp_path: Path) -> None:
    write_endpoints(tmp_path, RUNNING_UP)
    config = with_running_up(_config(tmp_path, EC_AWS_ENDPOINT_URL="http://127.0.0.1:5000"))
    assert config.events.endpoint_url == "http://127.0.0.1:5000"
    assert not config.auth.configured


def test_production_never_reads_the_file(tmp_path: Path) -> None:
    write_endpoints(tmp_path, RUNNING_UP)
    config = with_running_up(_config(tmp_path, EC_PROFILE="production", EC_TLS_MODE="DISABLE"))
    assert config.events.endpoint_url is None


def test_no_file_or_a_broken_one_changes_nothing(tmp_path: Path) -> None:
    assert with_running_up(_config(tmp_path)).events.endpoint_url is None
    (tmp_path / "endpoints.json").write_text("{half", encoding="utf-8")
    assert read_endpoints(tmp_path) is None
    assert with_running_up(_config(tmp_path)).events.endpoint_url is None


def test_a_process_with_its_own_data_finds_the_up_started_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".ec-data").mkdir()
    write_endpoints(tmp_path / ".ec-data", RUNNING_UP)
    config = with_running_up(_config(tmp_path / "consumer-data"))
    assert config.events.endpoint_url == "http://127.0.0.1:41234"
