"""What the subscribers take from the process configuration."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from ec_recommend.config import Config
from ec_recommend.consumers.email import EmailSender, open_email_sender


def configured_email_sender(config: Config) -> AbstractAsyncContextManager[EmailSender]:
    """SES lives where SNS/SQS live (moto's server locally, AWS in production)."""
    return open_email_sender(
        sender=config.notification.sender,
        region=config.events.region,
        endpoint_url=config.events.endpoint_url,
        verify_sender=config.notification.verify_sender,
    )
