"""Cognito's error codes as typed errors; Cognito's own messages never leak.

A wrong password, an unknown account and a disabled account are one
``Unauthenticated`` with one message, so callers cannot enumerate accounts.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from ec_recommend.platform import errors

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "incorrect email or password"
THROTTLED = frozenset(
    {"TooManyRequestsException", "LimitExceededException", "TooManyFailedAttemptsException"}
)
CREDENTIAL_ERRORS = frozenset(
    {"NotAuthorizedException", "UserNotFoundException", "PasswordResetRequiredException"}
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def raise_mapped(
    exc: ClientError, *, field: str | None = None, credentials_message: str = BAD_CREDENTIALS
) -> NoReturn:
    """Cognito's error code as a typed error; Cognito's own message never leaks."""
    code = error_code(exc)
    if code in CREDENTIAL_ERRORS:
        raise errors.Unauthenticated(credentials_message) from None
    if code == "UserNotConfirmedException":
        raise errors.FailedPrecondition(
            "the account is not confirmed yet", reason="not_confirmed"
        ) from None
    if code in ("UsernameExistsException", "AliasExistsException"):
        raise errors.AlreadyExists("an account with this email exists", field="email") from None
    if code == "InvalidPasswordException":
        raise errors.InvalidArgument(
            "password does not meet the password policy", field="password"
        ) from None
    if code in ("CodeMismatchException", "ExpiredCodeException"):
        raise errors.InvalidArgument("invalid or expired confirmation code", field="code") from None
    if code == "InvalidParameterException":
        raise errors.InvalidArgument("invalid request", field=field or "request") from None
    if code in THROTTLED:
        raise errors.ResourceExhausted("too many requests, try again later") from None
    log.error("Cognito call failed: %s", code or exc)
    raise errors.Unavailable("authentication service unavailable") from None


def raise_unavailable(exc: BotoCoreError) -> NoReturn:
    log.error("Cognito unreachable: %s", exc)
    raise errors.Unavailable("authentication service unavailable") from None
