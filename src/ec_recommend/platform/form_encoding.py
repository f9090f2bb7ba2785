"""The form-encoded body of an AWS query-protocol call, built at C speed.

botocore sends an SNS or SES call as ``urlencode(pairs, doseq=True)`` of its
serialized parameters, each key and value UTF-8 encoded first
(``AWSRequestPreparer._prepare_body``). urllib percent-encodes one byte at a
time in a Python list comprehension: ~1.3 ms for a PublishBatch of ten order
envelopes (24 KB encoded), done twice per call. ``form_urlencode`` returns the
same string from a few C passes over the whole body: every pair is joined
into one byte string with separators no pair contains, each unsafe ASCII
byte present is replaced everywhere at once (``%`` first, so the escapes
added later stay), runs of non-ASCII bytes become their ``%XX`` hex, and
spaces become ``+`` last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode

# What quote_plus leaves alone (urllib.parse._ALWAYS_SAFE); space becomes "+".
_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
# Stand-ins for "=" and "&" while the joined body is encoded.
_KEY_END = b"\x00"
_PAIR_END = b"\x01"
_NON_ASCII = bytes(range(0x80, 0x100))
# Bytes that leave the unsafe ASCII bytes when deleted.
_NOT_UNSAFE_ASCII = _SAFE + _KEY_END + _PAIR_END + _NON_ASCII + b"%+ "
_ESCAPE = {byte: b"%%%02X" % byte for byte in range(0x80)}
_NON_ASCII_RUN = re.compile(b"[\x80-\xff]+")


def _escape_run(match: re.Match[bytes]) -> bytes:
    return b"%" + match.group().hex("%").upper().encode("ascii")


def form_urlencode(params: Mapping[str, object]) -> str:
    """``urlencode`` of ``params`` as botocore prepares a query-protocol body.

    Byte for byte what ``urlencode([(k.encode(), v.encode()) ...],
    doseq=True)`` gives for string keys and string or number values
    (botocore's serializer makes no others); anything else, or a pair that
    contains a separator, goes through urllib itself.
    """
    pieces: list[str] = []
    for key, value in params.items():
        if type(key) is not str:
            return _slow(params)
        if type(value) is str:
            pieces += (key, value)
        elif type(value) is int or type(value) is float:
            # What urlencode does with a value without len(): quote str() of it.
            pieces += (key, str(value))
        else:
            return _slow(params)
    everything = "".join(pieces)
    if "\x00" in everything or "\x01" in everything:
        return _slow(params)
    pairs = map("\x00".join, zip(pieces[::2], pieces[1::2], strict=True))
    raw = "\x01".join(pairs).encode("utf-8")
    return _encode_joined(raw)


def _encode_joined(raw: bytes) -> str:
    unsafe = raw.translate(None, _NOT_UNSAFE_ASCII)
    out = raw.replace(b"%", b"%25").replace(b"+", b"%2B")
    while unsafe:
        byte = unsafe[:1]
        out = out.replace(byte, _ESCAPE[unsafe[0]])
        unsafe = unsafe.replace(byte, b"")
    if not out.isascii():
        out = _NON_ASCII_RUN.sub(_escape_run, out)
    return out.replace(b" ", b"+").replace(_KEY_END, b"=").replace(_PAIR_END, b"&").decode("ascii")


def _slow(params: Mapping[str, object]) -> str:
    """What botocore itself does (``AWSRequestPreparer._prepare_body``)."""
    pairs = [
        (
            key.encode("utf-8") if isinstance(key, str) else key,
            value.encode("utf-8") if isinstance(value, str) else value,
        )
        for key, value in params.items()
    ]
    return urlencode(pairs, doseq=True)
