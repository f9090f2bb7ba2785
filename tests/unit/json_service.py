"""A one-operation JSON-protocol service model for tests of botocore's shapes."""

from __future__ import annotations

from typing import Any

from botocore.model import ServiceModel


def json_service(operation: dict[str, Any], shapes: dict[str, Any]) -> ServiceModel:
    """Service ``Test`` with the operation ``Op`` (``operation``: its input
    and/or output) over ``shapes``."""
    return ServiceModel(
        {
            "metadata": {
                "protocol": "json",
                "apiVersion": "2026-12-01",
                "jsonVersion": "1.0",
                "serviceId": "Test",
                "endpointPrefix": "test",
                "signatureVersion": "v4",
                "targetPrefix": "Test",
            },
            "operations": {
                "Op": {"name": "Op", "http": {"method": "POST", "requestUri": "/"}, **operation}
            },
            "shapes": shapes,
        }
    )
