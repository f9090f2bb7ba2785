"""Cognito: where the user pool is and how tokens are checked."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config.values import Section, aws_region_default


@dataclass(frozen=True)
class AuthConfig:
    """Cognito: where the pool is and how tokens are checked.

    ``endpoint_url`` is moto's server locally and ``None`` (AWS) in production.
    ``issuer``/``jwks_url`` default to the AWS URLs of the pool; locally the
    JWKS comes from moto, whose tokens still name the AWS issuer.
    ``jwks_refresh_interval`` bounds refetches on an unknown ``kid`` so garbage
    tokens cannot hammer the JWKS endpoint.
    """

    region: str = "ap-northeast-1"
    user_pool_id: str = ""
    client_id: str = ""
    jwks_url: str = ""
    issuer: str = ""
    endpoint_url: str | None = None
    allow_seller_signup: bool = False
    auto_confirm: bool = False
    pool_name: str = "ec-recommend"
    jwks_refresh_interval: float = 30.0
    jwks_max_age: float = 3600.0

    @property
    def configured(self) -> bool:
        return bool(self.user_pool_id and self.client_id)

    @property
    def resolved_issuer(self) -> str:
        return self.issuer or (
            f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"
        )

    @property
    def resolved_jwks_url(self) -> str:
        if self.jwks_url:
            return self.jwks_url
        if self.endpoint_url:
            # moto serves every pool's JWKS under its own root.
            return f"{self.endpoint_url.rstrip('/')}/{self.user_pool_id}/.well-known/jwks.json"
        return f"{self.resolved_issuer}/.well-known/jwks.json"


def auth_config(section: Section, profile: str) -> AuthConfig:
    """``auth:`` file section and ``EC_COGNITO_*`` variables; local defaults suit moto."""
    local = profile == "local"
    return AuthConfig(
        region=str(section.pick("region", "EC_COGNITO_REGION", aws_region_default(section.env))),
        user_pool_id=str(section.pick("user_pool_id", "EC_COGNITO_USER_POOL_ID", "")),
        client_id=str(section.pick("client_id", "EC_COGNITO_CLIENT_ID", "")),
        jwks_url=str(section.pick("jwks_url", "EC_COGNITO_JWKS_URL", "")),
        issuer=str(section.pick("issuer", "EC_COGNITO_ISSUER", "")),
        endpoint_url=section.pick("endpoint_url", "EC_COGNITO_ENDPOINT_URL", None) or None,
        allow_seller_signup=section.flag("allow_seller_signup", "EC_ALLOW_SELLER_SIGNUP", local),
        auto_confirm=section.flag("auto_confirm", "EC_COGNITO_AUTO_CONFIRM", local),
        pool_name=str(section.pick("pool_name", "EC_COGNITO_POOL_NAME", "ec-recommend")),
        jwks_refresh_interval=section.seconds(
            "jwks_refresh_interval", "EC_JWKS_REFRESH_INTERVAL", 30.0
        ),
        jwks_max_age=section.seconds("jwks_max_age", "EC_JWKS_MAX_AGE", 3600.0),
    )
