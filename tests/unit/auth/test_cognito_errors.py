"""Cognito's error codes as typed errors, and input checks before any call."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ec_recommend.platform import errors
from ec_recommend.platform.auth.cognito import CognitoAccounts

pytestmark = pytest.mark.asyncio

PASSWORD = "Passw0rdExample"


def client_error(code: str, operation: str = "InitiateAuth") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": f"internal detail for {code}"}}, operation
    )


class FailingClient:
    """A cognito-idp client whose every call raises ``error``; records the calls."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[str] = []

    def __getattr__(self, operation: str) -> Any:
        async def call(**kwargs: Any) -> Any:
            self.calls.append(operation)
            if self.error is not None:
                raise self.error
            return {}

        return call


def accounts(client: Any, **options: Any) -> CognitoAccounts:
    return CognitoAccounts(client, user_pool_id="pool", client_id="app", **options)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("NotAuthorizedException", errors.Unauthenticated),
        ("UserNotFoundException", errors.Unauthenticated),
        ("UserNotConfirmedException", errors.FailedPrecondition),
        ("TooManyRequestsException", errors.ResourceExhausted),
        ("LimitExceededException", errors.ResourceExhausted),
        ("TooManyFailedAttemptsException", errors.ResourceExhausted),
        ("InternalErrorException", errors.Unavailable),
        ("ResourceNotFoundException", errors.Unavailable),
        ("SomethingNew", errors.Unavailable),
    ],
)
async def test_login_errors(code: str, expected: type[errors.ServiceError]) -> None:
    with pytest.raises(expected) as raised:
        await accounts(FailingClient(client_error(code))).login("a@example.com", PASSWORD)
    assert "internal detail" not in raised.value.message


async def test_wrong_password_unknown_user_and_disabled_user_share_one_message() -> None:
    messages = set()
    for code in ("NotAuthorizedException", "UserNotFoundException"):
        with pytest.raises(errors.Unauthenticated) as raised:
            await accounts(FailingClient(client_error(code))).login("a@example.com", PASSWORD)
        messages.add(raised.value.message)
    assert messages == {"incorrect email or password"}


@pytest.mark.parametrize(
    ("code", "expected", "field"),
    [
        ("UsernameExistsException", errors.AlreadyExists, "email"),
        ("InvalidPasswordException", errors.InvalidArgument, "password"),
        ("InvalidParameterException", errors.InvalidArgument, "email"),
    ],
)
async def test_signup_errors_name_the_field(
    code: str, expected: type[errors.ServiceError], field: str
) -> None:
    with pytest.raises(expected) as raised:
        await accounts(FailingClient(client_error(code, "SignUp"))).signup(
            "a@example.com", PASSWORD
        )
    assert raised.value.details["field"] == field


@pytest.mark.parametrize("code", ["CodeMismatchException", "ExpiredCodeException"])
async def test_bad_confirmation_code(code: str) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await accounts(FailingClient(client_error(code, "ConfirmSignUp"))).confirm(
            "a@example.com", "123456"
        )
    assert raised.value.details["field"] == "code"


async def test_unreachable_endpoint_is_unavailable() -> None:
    unreachable = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    with pytest.raises(errors.Unavailable):
        await accounts(FailingClient(unreachable)).login("a@example.com", PASSWORD)


@pytest.mark.parametrize(
    ("email", "password", "display_name", "role", "field"),
    [
        ("not-an-email", PASSWORD, None, "customer", "email"),
        ("a" * 250 + "@x.io", PASSWORD, None, "customer", "email"),
        (42, PASSWORD, None, "customer", "email"),
        ("a@example.com", "short", None, "customer", "password"),
        ("a@example.com", "x" * 300, None, "customer", "password"),
        ("a@example.com", None, None, "customer", "password"),
        ("a@example.com", PASSWORD, "n" * 101, "customer", "display_name"),
        ("a@example.com", PASSWORD, None, "admin", "role"),
        ("a@example.com", PASSWORD, None, "", "role"),
    ],
)
async def test_signup_input_is_checked_before_cognito_is_called(
    email: Any, password: Any, display_name: Any, role: Any, field: str
) -> None:
    client = FailingClient()
    with pytest.raises(errors.InvalidArgument) as raised:
        await accounts(client, allow_seller_signup=True).signup(email, password, display_name, role)
    assert raised.value.details["field"] == field
    assert client.calls == []


async def test_seller_signup_needs_permission() -> None:
    client = FailingClient()
    with pytest.raises(errors.PermissionDenied):
        await accounts(client, allow_seller_signup=False).signup(
            "a@example.com", PASSWORD, None, "seller"
        )
    assert client.calls == []


@pytest.mark.parametrize(
    ("email", "password"), [("", PASSWORD), ("a@example.com", ""), (None, None), ("a" * 300, "x")]
)
async def test_malformed_login_is_just_bad_credentials(email: Any, password: Any) -> None:
    client = FailingClient()
    with pytest.raises(errors.Unauthenticated):
        await accounts(client).login(email, password)
    assert client.calls == []
