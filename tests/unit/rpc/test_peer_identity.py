"""Service identity from a verified peer certificate (ssl.getpeercert() form)."""

from __future__ import annotations

from ec_recommend.platform.security.tls import peer_service


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
