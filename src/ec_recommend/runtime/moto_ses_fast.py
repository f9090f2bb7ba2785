"""The email consumers' SendBulkTemplatedEmail, answered straight from moto's SES backend.

With the consumers' SQS calls and the relays' PublishBatch answered on
their own fast paths, a profile of the broker under checkout found most of
what was left in the order emails' bulk calls, though they are about one
call in fifteen: each carries up to fifty rendered emails, Japanese text
percent-encoded, which werkzeug's form parser and then moto's parser (its
own pass over the body, then one against the service model) each decoded
again. The work itself, checking and recording the send, is the backend's.

For a request of the shape the consumers send (the query protocol in a form
body: a source, a template, default template data and one to fifty
destinations, each a numbered list of To addresses and its replacement
data, nothing else), ``answer`` decodes the form once and hands the backend
the same arguments ``EmailResponse.send_bulk_templated_email`` hands it, and
writes the same XML. A request moto would refuse (too many recipients, a
source not verified, a template that does not exist) is checked before the
backend is called, and goes to moto, as does anything else: Cc or Bcc
addresses, a configuration set, tags, a reply-to or return path. So every
error still reads as moto writes it;
``tests/integration/events/test_moto_ses_fast.py`` compares both paths'
answers as the AWS client parses them, and what the backend recorded.
"""

from __future__ import annotations

import re
from typing import Any

from ec_recommend.runtime.moto_fast import Environ, ToMoto, account_and_region, put_in_front
from ec_recommend.runtime.moto_query_fast import (
    answering_form,
    members,
    numbered,
    parse_form,
    response_metadata,
)

_VERSION = "2010-12-01"
_TOP_FIELDS = frozenset({"Source", "Template", "DefaultTemplateData"})
_DESTINATION_FIELD = re.compile(
    r"Destinations\.member\.([1-9][0-9]?)\."
    r"(?:(ReplacementTemplateData)|Destination\.ToAddresses\.member\.([1-9][0-9]?))"
)


def answer(environ: Environ, body: bytes, request_id: str) -> bytes:
    """The XML answer to a SendBulkTemplatedEmail; ``ToMoto`` when it is moto's to give."""
    from moto.ses.models import RECIPIENT_LIMIT, ses_backends
    from moto.ses.responses import EmailResponse

    source, template, template_data, destinations = parse_bulk_templated(body)
    account, region = account_and_region(environ, "ses", EmailResponse)
    backend = ses_backends[account][region]
    recipients = sum(len(d["Destination"]["ToAddresses"]) for d in destinations)
    # The backend's own refusals, checked first: it counts a refused source
    # before raising, and moto must not count it twice.
    if (
        len(destinations) > RECIPIENT_LIMIT
        or recipients > RECIPIENT_LIMIT
        or not backend._is_verified_address(source)
        or not backend.templates.get(template)
    ):
        raise ToMoto
    sent = backend.send_bulk_templated_email(source, template, template_data, destinations)
    status = members(
        "Status", [{"MessageId": message_id} for message_id in sent.ids], ("MessageId",)
    )
    return (
        f'<SendBulkTemplatedEmailResponse xmlns="http://ses.amazonaws.com/doc/{_VERSION}/">'
        f"<SendBulkTemplatedEmailResult>{status}</SendBulkTemplatedEmailResult>"
        f"{response_metadata(request_id)}</SendBulkTemplatedEmailResponse>"
    ).encode()


def parse_bulk_templated(body: bytes) -> tuple[str, str, str, list[dict[str, Any]]]:
    """The source, template, default data and destinations, as
    ``EmailResponse`` hands them to the backend; ``ToMoto`` for any other request."""
    form = parse_form(body, "SendBulkTemplatedEmail", _VERSION)
    top = {name: form.pop(name, None) for name in _TOP_FIELDS}
    addresses: dict[int, dict[int, str]] = {}
    replacements: dict[int, str] = {}
    for key, value in form.items():
        match = _DESTINATION_FIELD.fullmatch(key)
        if match is None:
            raise ToMoto
        destination = int(match.group(1))
        if match.group(2) is not None:
            replacements[destination] = value
        else:
            addresses.setdefault(destination, {})[int(match.group(3))] = value
    if (
        None in top.values()
        or not addresses
        or not numbered(addresses)
        or replacements.keys() != addresses.keys()
        or not all(numbered(to) for to in addresses.values())
    ):
        raise ToMoto
    destinations = [
        {
            "Destination": {"ToAddresses": [to[n] for n in range(1, len(to) + 1)]},
            "ReplacementTemplateData": replacements[number],
        }
        for number, to in sorted(addresses.items())
    ]
    return str(top["Source"]), str(top["Template"]), str(top["DefaultTemplateData"]), destinations


def _request_id() -> str:
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    return str(gen_amzn_requestid_long())


# ``app`` with the SendBulkTemplatedEmail fast path in front of it.
answering_fast = answering_form("ses", "SendBulkTemplatedEmail", answer, _request_id)


def install() -> None:
    """Answer the email consumers' bulk sends in this process's moto server."""
    put_in_front(answering_fast, "_ec_ses_fast")
