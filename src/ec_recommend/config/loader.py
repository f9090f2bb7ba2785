"""The whole process configuration, and reading it from a file and the environment.

This module is the only reader of ``os.environ``; everything else receives
the values it needs. A YAML file given with ``--config`` supplies the same
keys; environment variables win over it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ec_recommend.config.auth import AuthConfig, auth_config
from ec_recommend.config.cache import CacheConfig, cache_config
from ec_recommend.config.events import (
    EventsConfig,
    NotificationConfig,
    events_config,
    notification_config,
)
from ec_recommend.config.gateway import GatewayConfig, gateway_config
from ec_recommend.config.orders import OrderConfig, order_config
from ec_recommend.config.realtime import RealtimeConfig, realtime_config
from ec_recommend.config.stock import StockConfig, stock_config
from ec_recommend.config.storage import RpcConfig, StorageConfig, rpc_config, storage_config
from ec_recommend.config.telemetry import TelemetryConfig, telemetry_config
from ec_recommend.config.tls import TlsConfig, tls_config
from ec_recommend.config.values import ConfigError, Section, check_profile, optional_path


@dataclass(frozen=True)
class Config:
    profile: str = "local"  # local | production
    storage: StorageConfig = field(default_factory=StorageConfig)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    log_level: str = "INFO"
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    order: OrderConfig = field(default_factory=OrderConfig)
    stock: StockConfig = field(default_factory=StockConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    notification: NotificationConfig = field(default_factory=NotificationConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    # Seconds between backfill passes of the search/recommendation projections
    # from ProductService/OrderService; 0 = one pass at start. A fallback: the
    # subscribers keep the projections current within about a second. Each
    # pass re-reads what changed in its interval plus the feeds' overlap
    # (10 s for orders), so every 5 s each paid order was listed three times,
    # a few per cent of ``up``'s CPU under checkout; every 30 s, 1.3 times.
    projection_sync_interval: float = 30.0
    tls: TlsConfig = field(default_factory=TlsConfig)
    mesh_file: Path | None = None  # None: the packaged settings/mesh.yaml
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, file: Path | None = None
    ) -> Config:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        if file is not None:
            values = _load_yaml(file)
        return _build(values, env)

    def with_data_dir(self, data_dir: Path) -> Config:
        return replace(self, storage=replace(self.storage, data_dir=data_dir))


def auth_config_from_env(environ: Mapping[str, str] | None = None) -> AuthConfig:
    """Only the ``auth`` settings, for processes that need nothing else.

    The Lambda authorizer uses this: it has no services, storage or TLS to
    configure, and must not fail on their production requirements.
    """
    env = dict(os.environ if environ is None else environ)
    profile = check_profile(str(env.get("EC_PROFILE", "local")))
    return auth_config(Section("auth", {}, env), profile)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return loaded


def _build(values: Mapping[str, Any], env: Mapping[str, str]) -> Config:
    """Merge file values and ``EC_*`` variables (which win) into a Config."""

    def section(name: str) -> Section:
        return Section.of(name, values, env)

    top = Section("", values, env)
    profile = check_profile(str(top.pick("profile", "EC_PROFILE", "local")))
    storage = storage_config(section("storage"))
    rpc = rpc_config(section("rpc"))
    order = order_config(section("order"))
    return Config(
        profile=profile,
        storage=storage,
        rpc=rpc,
        log_level=str(top.pick("log_level", "EC_LOG_LEVEL", "INFO")).upper(),
        telemetry=telemetry_config(section("telemetry")),
        auth=auth_config(section("auth"), profile),
        order=order,
        stock=stock_config(section("stock")),
        events=events_config(section("events"), profile),
        notification=notification_config(section("notification"), profile),
        cache=cache_config(section("cache")),
        gateway=gateway_config(section("gateway")),
        realtime=realtime_config(section("realtime")),
        projection_sync_interval=float(
            top.count(
                "projection_sync_interval", "EC_PROJECTION_SYNC_INTERVAL", 30, allow_zero=True
            )
        ),
        tls=tls_config(section("tls"), profile),
        mesh_file=optional_path(top.pick("mesh_file", "EC_MESH_FILE", None)),
    )
