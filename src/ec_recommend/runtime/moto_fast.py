"""What the local broker's fast paths share: the WSGI types, the signal to
leave a request to moto, and how a fast path reads a request and takes its
place in front of moto's app.

Each fast path (``moto_sqs_fast``, ``moto_sns_fast``, ``moto_ses_fast``)
answers a few calls of one service straight from moto's backend, exactly as
moto would; anything it cannot answer so raises ``ToMoto`` and goes on to
moto's app with its body intact.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class ToMoto(Exception):
    """This request is not one the fast path answers: moto's app answers it."""


def read_body(environ: Environ) -> bytes:
    """The request's body, left readable again for moto's app."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def account_and_region(environ: Environ, service: str, response: Any) -> tuple[str, str]:
    """The account and region ``response`` (moto's response class for
    ``service``) derives for a request, with the IAM visit it records;
    ``ToMoto`` when the region is named anywhere but the signature (moto's
    to read)."""
    from moto.iam.models import get_account_id_from, mark_account_as_visited

    authorization = str(environ.get("HTTP_AUTHORIZATION", ""))
    host_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
    if response.region_regex.search(host_url) or response.region_from_useragent_regex.search(
        str(environ.get("HTTP_USER_AGENT", ""))
    ):
        raise ToMoto
    if "AWS4" not in authorization:
        raise ToMoto
    region = authorization.split(",")[0].split("/")[2]
    match = response.access_key_regex.search(authorization)
    access_key = match.group(1) if match else "AKIAEXAMPLE"
    account = (
        os.environ.get("MOTO_ACCOUNT_ID")
        or environ.get("HTTP_X_MOTO_ACCOUNT_ID")
        or get_account_id_from(access_key)
    )
    mark_account_as_visited(
        account_id=account, access_key=access_key, service=service, region=region
    )
    return account, region


def put_in_front(answering: Callable[[WsgiApp], WsgiApp], slot: str) -> None:
    """Put ``answering(moto's app)`` in front of the app moto's server runs,
    made once per app and kept in its attribute ``slot`` (at the class, as
    ``broker_calls.install`` does: install fast paths before the counter,
    so calls are still counted in front of them)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    serve = DomainDispatcherApplication.__call__

    def fast(self: Any, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        app = self.__dict__.get(slot)
        if app is None:
            app = answering(lambda env, respond: serve(self, env, respond))
            setattr(self, slot, app)
        return app(environ, start_response)  # type: ignore[no-any-return]

    DomainDispatcherApplication.__call__ = fast  # type: ignore[method-assign]
