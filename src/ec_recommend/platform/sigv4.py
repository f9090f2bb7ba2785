"""botocore's SigV4 signature, with the work it repeats per request done once.

``SigV4Auth.add_auth`` (on every SQS, SNS, SES and Cognito call) spends
most of its time on pieces whose result rarely changes:

- The signing key: four chained HMACs of the secret, the date, the region
  and the service, for every request. ``SigningMemo`` keeps the last one
  and derives it again only when one of the four differs, so a refreshed
  secret (botocore hands the signer the frozen credentials of each call)
  or the next day gets its own key.
- The Host header, parsed from the URL (``urlparse`` and its port) twice a
  request, and the URL's normalized path: kept per URL.
- ``headers_to_sign`` fills an ``email.message.Message`` from the request's
  (twice a request, each header through the email policy both ways). For
  ASCII names and values that appear once, a dict holds the same names and
  values; anything else (non-ASCII, not a string, a name given twice) goes
  to botocore's own code, which signs it or fails as it always did.
- ``payload`` reads ``request.body``, which prepares the whole request
  (headers copied, Content-Length) to hash the body botocore already holds
  as bytes or a string. The same digest comes from the data itself.

The canonical request, the string to sign and the Authorization header are
built by botocore's code from these pieces, in botocore's order.
"""

from __future__ import annotations

import hmac
from email.policy import compat32
from hashlib import sha256
from typing import Any

from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequestPreparer

_URLS_PER_CLIENT = 64  # queue URLs, topic endpoints: a few in practice


def derive_signing_key(secret_key: str, datestamp: str, region: str, service: str) -> bytes:
    """SigV4's signing key: what ``SigV4Auth.signature`` derives before its last HMAC."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), datestamp.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


class SigningMemo:
    """One client's signing pieces that only depend on their inputs, kept."""

    def __init__(self) -> None:
        self._scope: tuple[str, str, str, str] | None = None
        self._key = b""
        self._hosts: dict[str, str] = {}
        self._paths: dict[str, str] = {}

    def signing_key(self, secret_key: str, datestamp: str, region: str, service: str) -> bytes:
        """The last key derived, if it is for these four; else this one's, kept instead."""
        scope = (secret_key, datestamp, region, service)
        if scope != self._scope:
            self._key = derive_signing_key(*scope)
            self._scope = scope
        return self._key

    def host(self, url: str) -> str:
        """``botocore.auth._host_from_url(url)``."""
        host = self._hosts.get(url)
        if host is None:
            host = botocore_auth._host_from_url(url)
            if len(self._hosts) < _URLS_PER_CLIENT:
                self._hosts[url] = host
        return host

    def path(self, path: str, normalize: Any) -> str:
        """``normalize(path)``, for botocore's pure ``_normalize_url_path``."""
        normalized = self._paths.get(path)
        if normalized is None:
            normalized = normalize(path)
            if len(self._paths) < _URLS_PER_CLIENT:
                self._paths[path] = normalized
        return normalized  # type: ignore[no-any-return]


class _HeadersToSign(dict[str, str]):
    """The part of ``HTTPHeaders`` that ``SigV4Auth`` reads, for unique lowercase names."""

    def get_all(self, name: str) -> list[str]:
        return [self[name]]


def _plain(text: Any) -> bool:
    """A string ``HTTPHeaders`` hands back as it was given, and lowercases as ASCII."""
    return type(text) is str and text.isascii()


class TunedSigV4Auth(botocore_auth.SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """``SigV4Auth`` whose requests carry the same Authorization header, for less CPU."""

    def __init__(
        self, credentials: Any, service_name: str, region_name: str, *, memo: SigningMemo
    ) -> None:
        super().__init__(credentials, service_name, region_name)
        self._memo = memo

    def headers_to_sign(self, request: Any) -> Any:
        headers = request.headers
        # compat32 hands a plain value back as it stored it: read them stored.
        if getattr(headers, "policy", None) is not compat32 or not hasattr(headers, "_headers"):
            return super().headers_to_sign(request)
        chosen = _HeadersToSign()
        blacklist = botocore_auth.SIGNED_HEADERS_BLACKLIST
        for name, value in headers._headers:
            if not _plain(name) or not _plain(value):
                return super().headers_to_sign(request)
            lname = name.lower()
            if lname in blacklist:
                continue
            if lname in chosen:  # HTTPHeaders keeps both: botocore joins them
                return super().headers_to_sign(request)
            chosen[lname] = value
        if "host" not in chosen:
            host = self._memo.host(request.url)
            if not _plain(host):
                return super().headers_to_sign(request)
            chosen["host"] = host
        return chosen

    def canonical_headers(self, headers_to_sign: Any) -> str:
        if type(headers_to_sign) is not _HeadersToSign:
            return super().canonical_headers(headers_to_sign)  # type: ignore[no-any-return]
        # botocore's, for one string value per lowercase name.
        return "\n".join(
            f"{name}:{' '.join(headers_to_sign[name].split())}" for name in sorted(headers_to_sign)
        )

    def payload(self, request: Any) -> str:
        data = request.data
        kind = type(data)
        if (kind is not bytes and kind is not str) or not _prepares_body_as_is(request):
            return super().payload(request)  # type: ignore[no-any-return]
        if self._is_streaming_checksum_payload(request):
            return botocore_auth.STREAMING_UNSIGNED_PAYLOAD_TRAILER  # type: ignore[no-any-return]
        if not self._should_sha256_sign_payload(request):
            return botocore_auth.UNSIGNED_PAYLOAD  # type: ignore[no-any-return]
        # What ``request.body`` is: the data, a string encoded as UTF-8.
        body = data.encode("utf-8") if kind is str else data
        if not body:
            return botocore_auth.EMPTY_SHA256_HASH  # type: ignore[no-any-return]
        return sha256(body).hexdigest()

    def _normalize_url_path(self, path: str) -> str:
        return self._memo.path(path, super()._normalize_url_path)

    def signature(self, string_to_sign: str, request: Any) -> str:
        key = self._memo.signing_key(
            self.credentials.secret_key,
            request.context["timestamp"][0:8],
            self._region_name,
            self._service_name,
        )
        return hmac.digest(key, string_to_sign.encode("utf-8"), "sha256").hex()


def _prepares_body_as_is(request: Any) -> bool:
    """Whether ``request.body`` is its bytes or string data (botocore's own preparer)."""
    return type(request._request_preparer) is AWSRequestPreparer
