"""up refuses to expose the local identity provider unless told it is insecure."""

from __future__ import annotations

import pytest

from ec_recommend.cli import main
from ec_recommend.runtime.local_identity import listen_refusal, moto_seed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_is_allowed(host: str) -> None:
    assert listen_refusal(host, insecure=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "shop.example.com"])
def test_anything_else_needs_the_insecure_flag(host: str) -> None:
    refusal = listen_refusal(host, insecure=False)
    assert refusal is not None and "--insecure-auth" in refusal and "forge" in refusal
    assert listen_refusal(host, insecure=True) is None


def test_up_on_a_public_address_stops_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["up", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--insecure-auth" in capsys.readouterr().err


def test_the_moto_seed_is_a_function_of_the_tag() -> None:
    assert moto_seed("00000000000a") == 10
    assert moto_seed("ffffffffffff") != moto_seed("fffffffffffe")
