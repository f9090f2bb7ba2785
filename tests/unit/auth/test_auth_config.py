"""Auth settings from the environment and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec_recommend.config import AuthConfig, Config, ConfigError, auth_config_from_env


def test_local_profile_confirms_and_allows_sellers_by_default() -> None:
    auth = auth_config_from_env({})
    assert auth.auto_confirm
    assert auth.allow_seller_signup


def test_production_profile_does_neither_by_default() -> None:
    auth = auth_config_from_env({"EC_PROFILE": "production"})
    assert not auth.auto_confirm
    assert not auth.allow_seller_signup


def test_aws_urls_are_derived_from_region_and_pool() -> None:
    auth = auth_config_from_env(
        {"AWS_REGION": "us-east-1", "EC_COGNITO_USER_POOL_ID": "us-east-1_Abc"}
    )
    issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc"
    assert auth.resolved_issuer == issuer
    assert auth.resolved_jwks_url == f"{issuer}/.well-known/jwks.json"


def test_local_jwks_comes_from_the_endpoint_but_the_issuer_stays_aws() -> None:
    auth = AuthConfig(user_pool_id="ap-northeast-1_X", endpoint_url="http://127.0.0.1:5000/")
    assert auth.resolved_jwks_url == "http://127.0.0.1:5000/ap-northeast-1_X/.well-known/jwks.json"
    assert auth.resolved_issuer.startswith("https://cognito-idp.ap-northeast-1.amazonaws.com/")


def test_explicit_urls_win() -> None:
    auth = auth_config_from_env(
        {"EC_COGNITO_JWKS_URL": "http://keys.test/jwks", "EC_COGNITO_ISSUER": "https://iss.test"}
    )
    assert auth.resolved_jwks_url == "http://keys.test/jwks"
    assert auth.resolved_issuer == "https://iss.test"


@pytest.mark.parametrize(
    "env",
    [
        {"EC_COGNITO_AUTO_CONFIRM": "maybe"},
        {"EC_ALLOW_SELLER_SIGNUP": "2"},
        {"EC_JWKS_REFRESH_INTERVAL": "0"},
        {"EC_JWKS_MAX_AGE": "soon"},
        {"EC_PROFILE": "staging"},
    ],
)
def test_bad_values_are_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        auth_config_from_env(env)


def test_file_section_is_read_and_environment_wins(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text(
        "auth:\n  user_pool_id: ap-northeast-1_File\n  client_id: from-file\n"
        "  auto_confirm: false\n"
    )
    config = Config.from_env({"EC_COGNITO_CLIENT_ID": "from-env"}, file=file)
    assert config.auth.user_pool_id == "ap-northeast-1_File"
    assert config.auth.client_id == "from-env"
    assert not config.auth.auto_confirm
    assert config.auth.configured
