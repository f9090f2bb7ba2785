"""A development certificate authority and one certificate per service.

``ec-recommend certs init`` writes ``ca.crt``/``ca.key`` and, for every name,
``<name>.crt``/``<name>.key`` into a directory. Each service certificate
names the service three ways: CN, SAN URI ``spiffe://ec-recommend/<name>``
(the identity servers read) and SAN DNS ``<name>`` (what clients verify the
server against), plus localhost/127.0.0.1 for local tools. It serves both as
server and as client certificate. Not for production: real deployments bring
certificates from their own CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SPIFFE_PREFIX = "spiffe://ec-recommend/"
_PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str = "ec-recommend development CA", *, days: int = 3650) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, directory: Path) -> Authority:
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / 'ca.key'}: expected an EC private key")
        return cls(cert, key)

    def issue(
        self,
        name: str,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[bytes, bytes]:
        """PEM certificate and key for service ``name`` (valid one year by default)."""
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or _now() - datetime.timedelta(minutes=5)
        end = not_after or _now() + datetime.timedelta(days=365)
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(SPIFFE_PREFIX + name),
            x509.DNSName(name),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(_PEM), key_pem

    def write(self, directory: Path) -> None:
        _write(directory / "ca.crt", self.cert.public_bytes(_PEM))
        key_pem = self.key.private_bytes(
            _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(directory / "ca.key", key_pem, private=True)


def init_certificates(directory: Path, names: Iterable[str], *, force: bool = False) -> list[str]:
    """Create the CA (unless present) and certificates for the names missing one.

    Returns the names whose certificates were written. ``force`` starts over
    with a new CA.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if force or not (directory / "ca.crt").exists():
        authority = Authority.create()
        authority.write(directory)
        force = True
    else:
        authority = Authority.load(directory)
    written = []
    for name in dict.fromkeys(names):
        if force or not (directory / f"{name}.crt").exists():
            cert, key = authority.issue(name)
            _write(directory / f"{name}.crt", cert)
            _write(directory / f"{name}.key", key, private=True)
            written.append(name)
    return written


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
