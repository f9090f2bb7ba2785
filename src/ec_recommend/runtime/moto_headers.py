"""Request headers read without the email parser, in the local broker's process.

Python's HTTP server reads a request's headers with ``http.client.parse_headers``,
which hands them to the email package's feed parser: a state machine in
Python, line by line, for what is almost always ``Name: value`` lines. That
was ~15 % of the broker's CPU under checkout, now that its busiest calls
skip moto's own request handling (``moto_sqs_fast``).

``parse_headers`` here builds the same ``HTTPMessage`` from such lines
directly, with the value as the email parser leaves it (leading blanks and
the line ending stripped), in the same order, repeats kept. A block with
anything else in it (a folded line, a line without a colon, a name the
email parser would not take) goes to the email parser, which reads it as it
always did. The limits on line length and header count are the same code.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any

# A header line the email parser takes as one (``feedparser.headerRE`` without
# its "From " and continuation cases, which are left to the email parser).
_SIMPLE_LINE = re.compile(r"([\041-\071\073-\176]+):([^\r\n]*)\r?\n\Z")


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``: the same message, for the same bytes."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    message = _class()
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break
        match = _SIMPLE_LINE.match(raw.decode("iso-8859-1"))
        if match is None:
            return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        message[match.group(1)] = match.group(2).lstrip(" \t")
    message.set_payload("")  # what the email parser leaves after the blank line
    return message


def install() -> None:
    """Read every request's headers in this process with ``parse_headers``
    (``http.server`` looks the function up on ``http.client`` per request)."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
