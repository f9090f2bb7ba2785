"""Calls between services hosted in the same process, without sockets or HTTP/2.

A client whose target is hosted here (``ClientFactory.host_locally``) hands
each try to the server object (``RpcServer.call_local``) instead of a
channel. Everything else stays what a call over a socket does: the client's
policies (deadline and budget, retries, breaker, metrics, tracing) run
unchanged, and the server runs the call through its one pipeline (drain
check, call context, telemetry, the allow-list by caller identity, error
translation). For isolation the request and the reply go through the codec
(encoded by the sender, decoded by the receiver: neither side can touch the
other's objects), the metadata through grpclib's checks (values under keys it
has accepted are checked and copied, anything else is encoded and decoded by
grpclib), and error details through the status details codec.

The caller's identity is what its certificate would present in a handshake
(``ClientTls.presented_service``): the acting service's own, the process's
otherwise. ``EC_RPC_IN_PROCESS=0`` (``rpc.in_process: false``) sends every
call over sockets instead, for tests and setups that mean the network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from grpclib.const import Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError
from grpclib.metadata import Deadline, decode_metadata, encode_metadata
from multidict import MultiDict

from ec_recommend.platform.rpc.status import ErrorDetailsCodec

_DETAILS = ErrorDetailsCodec()


class LocalStream:
    """The server side of one in-process call, as handlers and middlewares use it.

    Mirrors what they read of grpclib's server ``Stream``: ``metadata``,
    ``deadline``, ``recv_message`` and ``send_message``.
    """

    def __init__(
        self,
        codec: CodecBase,
        request: bytes,
        request_type: type[Any],
        reply_type: type[Any],
        metadata: MultiDict[str | bytes],
        deadline: Deadline | None,
    ) -> None:
        self._codec = codec
        self._request: bytes | None = request
        self._request_type = request_type
        self._reply_type = reply_type
        self.metadata = metadata
        self.deadline = deadline
        self.user_agent: str | None = None
        self.reply: bytes | None = None

    async def recv_message(self) -> Any:
        """The request, decoded here (None once read, as on a stream)."""
        data, self._request = self._request, None
        if data is None:
            return None
        return self._codec.decode(data, self._request_type)

    async def send_message(self, message: Any) -> None:
        if self.reply is not None:
            raise GRPCError(Status.INTERNAL, "a unary call answers once")
        self.reply = self._codec.encode(message, self._reply_type)


# Keys grpclib has accepted for text values (name and not reserved): a key is
# checked once, its values every time. Bounded: keys come from code, not data.
_text_keys: set[str] = set()
_TEXT_KEYS_KEPT = 256
# grpclib's check of a text value (grpclib.metadata._VALUE_RE): printable ASCII
_TEXT_VALUE = re.compile(r"[ !-~]+")


def wire_metadata(metadata: Sequence[tuple[str, str | bytes]]) -> MultiDict[str | bytes]:
    """``metadata`` as a server receives it: validated and encoded as grpclib
    sends it (invalid keys or values fail here as they would there), then
    decoded, without the reserved headers.

    Text values under keys grpclib has accepted before come through
    unchanged, so those are checked here and copied; anything else goes
    through grpclib's own encoding and decoding (and its errors).
    """
    for key, value in metadata:
        if key not in _text_keys or not isinstance(value, str) or not _TEXT_VALUE.fullmatch(value):
            return _through_grpclib(metadata)
    return MultiDict(metadata)


def _through_grpclib(metadata: Sequence[tuple[str, str | bytes]]) -> MultiDict[str | bytes]:
    received = decode_metadata(encode_metadata(metadata))
    for key, _ in metadata:
        if not key.endswith("-bin") and len(_text_keys) < _TEXT_KEYS_KEPT:
            _text_keys.add(key)  # grpclib took it, with a text value
    return received


def wire_error(error: GRPCError) -> GRPCError:
    """``error`` as a client receives it: details through the details codec."""
    if error.details is None:
        return error
    status, message = error.status, error.message
    data = _DETAILS.encode(status, message, error.details)
    return GRPCError(status, message, _DETAILS.decode(status, message, data))
