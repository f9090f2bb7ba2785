"""What the subscribers take from the process configuration."""

from __future__ import annotations

from dataclasses import dataclass

from ec_recommend.config import Config


@dataclass(frozen=True)
class EmailSettings:
    sender: str
    region: str
    endpoint_url: str | None
    verify_sender: bool


def email_settings(config: Config) -> EmailSettings:
    """SES lives where SNS/SQS live (moto's server locally, AWS in production)."""
    return EmailSettings(
        sender=config.notification.sender,
        region=config.events.region,
        endpoint_url=config.events.endpoint_url,
        verify_sender=config.notification.verify_sender,
    )
