"""Client addresses: the socket peer unless it is a trusted proxy."""

from __future__ import annotations

from ec_recommend.edge.gateway.client_address import ClientAddressResolver


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8"])
    assert resolver.resolve("203.0.113.9", "1.1.1.1") == "203.0.113.9"
    assert ClientAddressResolver().resolve("127.0.0.1", "1.1.1.1") == "127.0.0.1"


def test_trusted_proxy_chain_is_read_from_the_right() -> None:
    resolver = ClientAddressResolver(["10.0.0.0/8", "192.168.1.1"])
    # the client may prepend anything; the first untrusted hop from the right counts
    assert resolver.resolve("10.0.0.5", "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    assert resolver.resolve("10.0.0.5", "198.51.100.7, 192.168.1.1") == "198.51.100.7"
    assert resolver.resolve("10.0.0.5", "10.1.1.1") == "10.0.0.5"  # all trusted
    assert resolver.resolve("10.0.0.5", "not-an-ip") == "10.0.0.5"
    assert resolver.resolve("10.0.0.5", None) == "10.0.0.5"
    assert resolver.resolve("10.0.0.5", "2001:db8::1") == "2001:db8::1"
