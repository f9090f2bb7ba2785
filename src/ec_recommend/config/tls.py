"""mTLS between services."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ec_recommend.config.values import ConfigError, Section, optional_path


@dataclass(frozen=True)
class TlsConfig:
    """mTLS between services (seed 7.1).

    ``mode``: STRICT (TLS, client certificate from ``ca`` required), PERMISSIVE
    (TLS, client certificate optional: callers without one have no service
    identity), DISABLE (plaintext). A process presents ``cert``/``key``; or,
    when it hosts several services, ``cert_dir/<service>.crt`` and ``.key`` of
    the service it acts for (what ``ec-recommend certs init`` writes).
    """

    mode: str = "DISABLE"
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    cert_dir: Path | None = None
    # signs the identity every gRPC call carries (platform/security/call_token.py);
    # None: the key kept in the data dir
    call_key: bytes | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.mode != "DISABLE"


def tls_config(section: Section, profile: str) -> TlsConfig:
    """``tls:`` file section (the seed's shape) and ``EC_TLS_*`` variables.

    STRICT is the default in production; the local profile defaults to DISABLE.
    """
    certs = Section("tls.certificates", dict(section.values.get("certificates") or {}), section.env)

    def path(key: str, env_key: str) -> Path | None:
        return optional_path(certs.pick(key, env_key, None))

    default_mode = "STRICT" if profile == "production" else "DISABLE"
    mode = str(section.pick("mode", "EC_TLS_MODE", default_mode)).upper()
    if mode not in ("STRICT", "PERMISSIVE", "DISABLE"):
        raise ConfigError(f"tls.mode: expected STRICT, PERMISSIVE or DISABLE, got {mode!r}")
    tls = TlsConfig(
        mode=mode,
        ca=path("ca", "EC_TLS_CA"),
        cert=path("cert", "EC_TLS_CERT"),
        key=path("key", "EC_TLS_KEY"),
        cert_dir=path("dir", "EC_TLS_CERT_DIR"),
        call_key=_call_key(section.pick("call_identity_key", "EC_CALL_IDENTITY_KEY", None)),
    )
    if tls.enabled:
        if tls.ca is None:
            raise ConfigError(f"tls.certificates.ca: required when tls.mode is {mode}")
        if tls.cert_dir is None and (tls.cert is None or tls.key is None):
            raise ConfigError(
                f"tls.certificates: cert and key (or dir) are required when tls.mode is {mode}"
            )
    return tls


def _call_key(text: object) -> bytes | None:
    if not text:
        return None
    from ec_recommend.platform.security.call_token import parse_key

    try:
        return parse_key(str(text))
    except ValueError as exc:
        raise ConfigError(f"tls.call_identity_key (EC_CALL_IDENTITY_KEY): {exc}") from None
