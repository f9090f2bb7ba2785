"""Process configuration: frozen dataclasses, read once.

``Config.from_env`` (in ``loader``) is the only reader of ``os.environ``;
everything else receives the values it needs. One module per area holds its
settings and how they are read from the file section and ``EC_*`` variables.
"""

from ec_recommend.config.auth import AuthConfig
from ec_recommend.config.cache import CacheConfig
from ec_recommend.config.events import EventsConfig, NotificationConfig
from ec_recommend.config.gateway import GatewayConfig
from ec_recommend.config.loader import Config, auth_config_from_env
from ec_recommend.config.orders import OrderConfig
from ec_recommend.config.realtime import RealtimeConfig
from ec_recommend.config.stock import StockConfig
from ec_recommend.config.storage import SERVICE_NAMES, Endpoint, RpcConfig, StorageConfig
from ec_recommend.config.telemetry import TelemetryConfig
from ec_recommend.config.tls import TlsConfig
from ec_recommend.config.values import ConfigError

__all__ = [
    "SERVICE_NAMES",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "ConfigError",
    "Endpoint",
    "EventsConfig",
    "GatewayConfig",
    "NotificationConfig",
    "OrderConfig",
    "RealtimeConfig",
    "RpcConfig",
    "StockConfig",
    "StorageConfig",
    "TelemetryConfig",
    "TlsConfig",
    "auth_config_from_env",
]
