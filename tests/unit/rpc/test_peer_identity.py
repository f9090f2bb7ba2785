"""Service identity from a verified peer certificate (ssl.getpeercert() form)."""

from __future__ import annotations

from ec_recommend.platform.security.tls import PeerIdentities, peer_service


def test_spiffe_uri_names_the_service() -> None:
    cert = {
        "subject": ((("commonName", "something-else"),),),
        "subjectAltName": (("DNS", "order"), ("URI", "spiffe://ec-recommend/order")),
    }
    assert peer_service(cert) == "order"


def test_common_name_is_the_fallback() -> None:
    assert peer_service({"subject": ((("commonName", "gateway"),),)}) == "gateway"


def test_foreign_spiffe_domains_and_missing_certificates_name_nobody() -> None:
    cert = {"subjectAltName": (("URI", "spiffe://other-mesh/order"),)}
    assert peer_service(cert) is None
    assert peer_service({}) is None
    assert peer_service(None) is None


class FakeSslObject:
    """A connection's SSL object: counts how often its certificate is decoded."""

    def __init__(self, cert: dict[str, object]) -> None:
        self.cert = cert
        self.decoded = 0

    def getpeercert(self) -> dict[str, object]:
        self.decoded += 1
        return self.cert


def test_the_peer_of_a_connection_is_read_once() -> None:
    peers = PeerIdentities()
    order = FakeSslObject({"subjectAltName": (("URI", "spiffe://ec-recommend/order"),)})
    cart = FakeSslObject({"subject": ((("commonName", "cart"),),)})
    anonymous = FakeSslObject({})  # PERMISSIVE: a caller without a certificate
    for _ in range(3):
        assert peers.of(order) == "order"
        assert peers.of(cart) == "cart"
        assert peers.of(anonymous) is None
    assert (order.decoded, cart.decoded, anonymous.decoded) == (1, 1, 1)
    assert peers.of(None) is None  # no TLS on the connection


def test_a_closed_connection_leaves_the_cache() -> None:
    peers = PeerIdentities()
    connection = FakeSslObject({"subject": ((("commonName", "cart"),),)})
    peers.of(connection)
    del connection
    assert len(peers._known) == 0
