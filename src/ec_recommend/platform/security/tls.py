"""SSL contexts for mTLS between services (seed 7.1) and peer identities.

Servers in STRICT mode require a client certificate signed by the configured
CA; in PERMISSIVE mode they ask for one but also admit callers without it
(who then have no service identity). Clients present the certificate of the
service they act for and verify that the server is the service they dial
(``ssl_target_name_override`` = service name, checked against SAN DNS).
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ec_recommend.config import ConfigError, TlsConfig
from ec_recommend.platform.security.certs import SPIFFE_PREFIX, init_certificates

GATEWAY = "gateway"


def _files(tls: TlsConfig, name: str | None) -> tuple[Path, Path]:
    if tls.cert_dir is not None and name:
        cert, key = tls.cert_dir / f"{name}.crt", tls.cert_dir / f"{name}.key"
        if cert.exists() or tls.cert is None:
            return cert, key
    if tls.cert is None or tls.key is None:
        raise ConfigError(f"tls: no certificate for {name!r} (looked in {tls.cert_dir})")
    return tls.cert, tls.key


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls: cannot load {cert} / {key}: {exc}") from exc


def _trust(context: ssl.SSLContext, tls: TlsConfig) -> None:
    try:
        context.load_verify_locations(cafile=tls.ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"tls.certificates.ca: cannot load {tls.ca}: {exc}") from exc


class ServerContext(ssl.SSLContext):
    """A server's SSL context that knows the PEM files it was loaded from.

    grpclib serves with the context itself; grpcio takes PEM bytes instead
    (``aio_server.server_credentials``), read from the same files.
    """

    files: tuple[Path, Path, Path]  # CA, certificate, key

    def pem(self) -> tuple[bytes, bytes, bytes]:
        """The CA, certificate and key, as PEM bytes."""
        return _read_pem(self.files)


def _read_pem(files: tuple[Path, ...]) -> tuple[bytes, bytes, bytes]:
    try:
        ca, cert, key = (path.read_bytes() for path in files)
    except OSError as exc:
        raise ConfigError(f"tls: cannot read {exc.filename}: {exc.strerror}") from exc
    return ca, cert, key


def server_context(tls: TlsConfig, service: str) -> ServerContext | None:
    """The server side of ``service``; None when TLS is disabled."""
    if not tls.enabled:
        return None
    context = ServerContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    _trust(context, tls)
    cert, key = _files(tls, service)
    _load_chain(context, cert, key)
    assert tls.ca is not None  # _trust loaded it
    context.files = (tls.ca, cert, key)
    context.verify_mode = ssl.CERT_REQUIRED if tls.mode == "STRICT" else ssl.CERT_OPTIONAL
    return context


class ClientTls:
    """Client contexts per identity, built once each.

    ``identity`` is who calls made outside any service or consumer present;
    None means the process's own certificate (``tls.certificates.cert``).
    Code acting as a service or consumer presents ``cert_dir/<name>.crt``
    when that exists, else the process's certificate: never someone else's.
    """

    def __init__(self, tls: TlsConfig, identity: str | None = None) -> None:
        if not tls.enabled:
            raise ValueError("ClientTls needs tls.mode STRICT or PERMISSIVE")
        self.config = tls
        self.identity = identity
        self._contexts: dict[str | None, ssl.SSLContext] = {}
        self._pems: dict[str | None, tuple[bytes, bytes, bytes]] = {}
        self._identities: dict[str, str | None] = {}
        self._presented: dict[str | None, str | None] = {}

    def identity_for(self, actor: str | None) -> str | None:
        """Whose certificate a call made while acting as ``actor`` presents."""
        if not actor:
            return self.identity
        if actor not in self._identities:
            cert_dir = self.config.cert_dir
            has_own = cert_dir is not None and (cert_dir / f"{actor}.crt").exists()
            self._identities[actor] = actor if has_own else None
        return self._identities[actor]

    def presented_service(self, identity: str | None) -> str | None:
        """The service identity a server reads from the certificate of ``identity``.

        What ``peer_service`` makes of that certificate after a handshake,
        read from the file once: an in-process call presents it without one.
        """
        identity = identity or self.identity
        if identity not in self._presented:
            if identity is None and self.config.cert is None:
                self.context(identity)  # raises the ConfigError that names the fix
            self._presented[identity] = certificate_service(_files(self.config, identity)[0])
        return self._presented[identity]

    def pem(self, identity: str | None) -> tuple[bytes, bytes, bytes]:
        """The CA, certificate and key ``context(identity)`` is built from, as PEM
        bytes (what grpcio's channel credentials take)."""
        identity = identity or self.identity
        pem = self._pems.get(identity)
        if pem is None:
            self._require_own(identity)
            assert self.config.ca is not None
            pem = self._pems[identity] = _read_pem((self.config.ca, *_files(self.config, identity)))
        return pem

    def _require_own(self, identity: str | None) -> None:
        if identity is None and (self.config.cert is None or self.config.key is None):
            raise ConfigError(
                "tls: calls made outside any service need the process's own "
                "certificate: set tls.certificates.cert and key (EC_TLS_CERT, EC_TLS_KEY)"
            )

    def context(self, identity: str | None) -> ssl.SSLContext:
        identity = identity or self.identity
        context = self._contexts.get(identity)
        if context is None:
            self._require_own(identity)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["h2"])
            _trust(context, self.config)
            _load_chain(context, *_files(self.config, identity))
            self._contexts[identity] = context
        return context


def peer_service(cert: Mapping[str, Any] | None) -> str | None:
    """The service named by a verified peer certificate (SPIFFE URI, else CN)."""
    if not cert:
        return None
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "URI" and str(value).startswith(SPIFFE_PREFIX):
            return str(value).removeprefix(SPIFFE_PREFIX)
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def certificate_service(path: Path) -> str | None:
    """``peer_service`` of the certificate in the PEM file ``path``."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"tls: cannot read certificate {path}: {exc}") from exc
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is not None:
        for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(SPIFFE_PREFIX):
                return uri.removeprefix(SPIFFE_PREFIX)
    for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        return str(attribute.value)
    return None


class PeerIdentities:
    """The service identity of each TLS connection's peer, read once per connection.

    ``getpeercert()`` decodes the whole certificate into a dict on every
    call; a connection's peer never changes, so the first call on it pays
    for all. Keyed weakly by the connection's SSL object: entries go with it.
    """

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()

    def of(self, ssl_object: Any) -> str | None:
        """The peer service of the connection ``ssl_object`` (None: no TLS or no cert)."""
        if ssl_object is None:
            return None
        try:
            return self._known[ssl_object]
        except KeyError:
            service = self._known[ssl_object] = peer_service(ssl_object.getpeercert())
            return service


def dev_tls_config(cert_dir: Path, names: Iterable[str], mode: str = "STRICT") -> TlsConfig:
    """A TLS config over development certificates, created on first use.

    One call for ``ec-recommend up --mtls``, with everyone who needs a
    certificate (``runtime.registry.certificate_names()``):
    ``config = replace(config, tls=dev_tls_config(data_dir / "certs", names))``.
    """
    init_certificates(cert_dir, names)
    return TlsConfig(
        mode=mode,
        ca=cert_dir / "ca.crt",
        cert=cert_dir / f"{GATEWAY}.crt",
        key=cert_dir / f"{GATEWAY}.key",
        cert_dir=cert_dir,
    )
