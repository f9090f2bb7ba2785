"""botocore's SigV4 signature, with the work it repeats per request done once.

``SigV4Auth.add_auth`` (on every SQS, SNS, SES and Cognito call) spends
most of its time on three things whose result rarely changes:

- The signing key: four chained HMACs of the secret, the date, the region
  and the service, for every request. ``SigningKeys`` keeps the last one
  and derives it again only when one of the four differs, so a refreshed
  secret (botocore hands the signer the frozen credentials of each call)
  or the next day gets its own key.
- ``headers_to_sign`` fills an ``email.message.Message`` (twice a request,
  one header at a time through its policy). A plain header's lowercase
  name is unique in botocore's case-insensitive ``HeadersDict``, so a dict
  holds the same names and values; anything unusual (a non-ASCII or
  non-string value, two names that lowercase alike) goes to botocore's own.
- ``payload`` reads ``request.body``, which prepares the whole request
  (headers copied, Content-Length) to hash the body botocore already has as
  bytes or a string. The same digest comes from the data itself.

The canonical request, string to sign and Authorization header are built
by botocore's code from these pieces, unchanged.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Any

from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequestPreparer

_NORMALIZED_PATHS = 64  # per client: a few queue URLs and "/" in practice


def derive_signing_key(secret_key: str, datestamp: str, region: str, service: str) -> bytes:
    """SigV4's signing key: what ``SigV4Auth.signature`` derives before its last HMAC."""
    key = hmac.digest(f"AWS4{secret_key}".encode(), datestamp.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


class SigningKeys:
    """The last signing key derived, and the secret, date, region and service it is for."""

    def __init__(self) -> None:
        self._scope: tuple[str, str, str, str] | None = None
        self._key = b""

    def key(self, secret_key: str, datestamp: str, region: str, service: str) -> bytes:
        scope = (secret_key, datestamp, region, service)
        if scope != self._scope:
            self._key = derive_signing_key(*scope)
            self._scope = scope
        return self._key


class _HeadersToSign(dict[str, str]):
    """The part of ``HTTPHeaders`` that ``SigV4Auth`` reads, for unique lowercase names."""

    def get_all(self, name: str) -> list[str]:
        return [self[name]]


def _plain(value: Any) -> bool:
    """A value ``HTTPHeaders`` would hand back as it was given (no surrogates)."""
    return type(value) is str and value.isascii()


class TunedSigV4Auth(botocore_auth.SigV4Auth):
    """``SigV4Auth`` whose requests carry the same Authorization header, for less CPU."""

    def __init__(
        self,
        credentials: Any,
        service_name: str,
        region_name: str,
        *,
        keys: SigningKeys,
        paths: dict[str, str],
    ) -> None:
        super().__init__(credentials, service_name, region_name)
        self._keys = keys
        self._paths = paths

    def headers_to_sign(self, request: Any) -> Any:
        headers = _HeadersToSign()
        blacklist = botocore_auth.SIGNED_HEADERS_BLACKLIST
        for name, value in request.headers.items():
            if type(name) is not str or not _plain(value):
                return super().headers_to_sign(request)
            lname = name.lower()
            if lname in blacklist:
                continue
            if lname in headers:  # HTTPHeaders would keep both
                return super().headers_to_sign(request)
            headers[lname] = value
        if "host" not in headers:
            host = botocore_auth._host_from_url(request.url)
            if not _plain(host):
                return super().headers_to_sign(request)
            headers["host"] = host
        return headers

    def payload(self, request: Any) -> str:
        data = request.data
        kind = type(data)
        if (kind is not bytes and kind is not str) or not _prepares_body_as_is(request):
            return super().payload(request)  # type: ignore[no-any-return]
        if self._is_streaming_checksum_payload(request):
            return botocore_auth.STREAMING_UNSIGNED_PAYLOAD_TRAILER
        if not self._should_sha256_sign_payload(request):
            return botocore_auth.UNSIGNED_PAYLOAD
        # What ``request.body`` is: the data, a string encoded as UTF-8.
        body = data.encode("utf-8") if kind is str else data
        if not body:
            return botocore_auth.EMPTY_SHA256_HASH
        return sha256(body).hexdigest()

    def _normalize_url_path(self, path: str) -> str:
        normalized = self._paths.get(path)
        if normalized is None:
            normalized = super()._normalize_url_path(path)
            if len(self._paths) < _NORMALIZED_PATHS:
                self._paths[path] = normalized
        return normalized

    def signature(self, string_to_sign: str, request: Any) -> str:
        key = self._keys.key(
            self.credentials.secret_key,
            request.context["timestamp"][0:8],
            self._region_name,
            self._service_name,
        )
        return hmac.digest(key, string_to_sign.encode("utf-8"), "sha256").hex()


def _prepares_body_as_is(request: Any) -> bool:
    """Whether ``request.body`` is its bytes or string data (botocore's own preparer)."""
    return type(request._request_preparer) is AWSRequestPreparer
