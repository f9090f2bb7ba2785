from tests.telemetry_support import spans

__all__ = ["spans"]
