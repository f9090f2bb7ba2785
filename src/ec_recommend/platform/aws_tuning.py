"""Less client CPU per aiobotocore call, with the same bytes on the wire.

About a fifth of ``up``'s CPU under checkout was botocore's own work per
call (~2.5 ms), much of it repeated for nothing:

- A query-protocol body (SNS, SES) is a dict until the request is prepared,
  and ``AWSRequest`` prepares it twice (the signer reads ``request.body``,
  then the endpoint prepares the request to send it): two ``urlencode`` runs
  that percent-encode byte by byte in Python. ``_encode_form_body`` hands
  botocore the finished string (``form_encoding``) before either runs.
- The User-Agent string is built and sanitized character by character twice
  per call, though it only varies with the features the call registered.
  ``_cache_user_agent`` keeps one per feature set.
- SigV4 signing derived the signing key (four HMACs), parsed the Host from
  the URL and copied the headers through an email ``Message`` twice, and
  prepared the whole request to hash its body, per request.
  ``_sign_with_tuned_sigv4`` has botocore's signer sign with ``sigv4``'s
  ``TunedSigV4Auth``: the same Authorization header, the key kept per client
  until the secret (credentials refresh), the day, region or service change.
- Parameter validation walked the input shape per call through a ``getattr``
  per value. ``_check_params_with_compiled_shapes`` answers "valid" from the
  shape compiled once (``param_checks``); anything else still goes to
  botocore's validator, so errors read as they did.
- A JSON-protocol response (SQS) was parsed by walking the output shape per
  node. ``_read_json_with_compiled_shapes`` reads it through the shape
  compiled once (``json_responses``): the same dicts.

Each is installed on this client's own objects (its signer's auth factory,
its serializer, its endpoint's parser factory), never on botocore's classes;
anything unusual falls back to botocore's own code. The tests compare a
tuned and an untuned client's requests byte for byte, signatures included,
and their parsed responses (``tests/integration/events/test_aws_tuning.py``).
Endpoint resolution, SQS's MD5 checks and the serializers stay as they are.
"""

from __future__ import annotations

from typing import Any

from botocore.auth import SigV4Auth
from botocore.context import get_context
from botocore.validate import ParamValidationDecorator, ParamValidator

from ec_recommend.platform.form_encoding import form_urlencode
from ec_recommend.platform.json_responses import TunedParserFactory
from ec_recommend.platform.param_checks import TunedValidationDecorator
from ec_recommend.platform.sigv4 import SigningMemo, TunedSigV4Auth

_USER_AGENTS_PER_CLIENT = 32  # distinct feature sets seen; a few in practice


def tune_client(client: Any) -> None:
    """Install the trims on one aiobotocore client (its own event emitter)."""
    service_model = client.meta.service_model
    if service_model.protocol == "query":
        service_id = service_model.service_id.hyphenize()
        # Last, so any other handler still sees the dict botocore made.
        client.meta.events.register_last(f"before-call.{service_id}", _encode_form_body)
    _cache_user_agent(client)
    _sign_with_tuned_sigv4(client)
    if service_model.protocol == "json":
        _read_json_with_compiled_shapes(client)
    _check_params_with_compiled_shapes(client)


def _encode_form_body(params: dict[str, Any], model: Any, **_: Any) -> None:
    """``before-call``: the serialized dict body becomes its form-encoded string.

    botocore's preparer passes a string body through as it is, so the
    request's body, Content-Length and signature are what the dict gave. A
    body botocore compresses or checksums keeps its dict (SNS and SES have
    neither); so does one it could not encode (it raises then, as before).
    """
    body = params.get("body")
    if type(body) is not dict or model.request_compression is not None:
        return
    if params.get("context", {}).get("checksum", {}).get("request_algorithm"):
        return
    try:
        params["body"] = form_urlencode(body)
    except UnicodeEncodeError:
        return


def _cache_user_agent(client: Any) -> None:
    """One User-Agent string per set of features, for this client.

    ``UserAgentString.to_string`` reads the client's config, the session's
    and the platform's (all fixed once the client exists) and the features
    registered in the current call's context; so the features are the key.
    Both of botocore's uses (building the request, and the ``request-created``
    handler that rebuilds the header) call ``to_string`` on this object.
    """
    creator = client._user_agent_creator
    build = creator.to_string
    cache: dict[frozenset[str], str] = {}

    def to_string() -> str:
        context = get_context()
        key = frozenset(context.features) if context is not None else frozenset()
        user_agent = cache.get(key)
        if user_agent is None:
            user_agent = build()
            if len(cache) < _USER_AGENTS_PER_CLIENT:
                cache[key] = user_agent
        return user_agent

    creator.to_string = to_string


def _sign_with_tuned_sigv4(client: Any) -> None:
    """Sign this client's SigV4 requests with ``TunedSigV4Auth`` (``sigv4``).

    botocore's signer still does all the rest per request: it chooses the
    signature version, emits its events and fetches the frozen credentials
    (refreshing them when due), then asks ``get_auth_instance`` for a signer
    of them. Only a plain ``SigV4Auth`` is swapped, for one built from the
    same credentials, service and region; any other (presigned URLs, bearer
    tokens, unsigned) is botocore's as it was.
    """
    signer = client._request_signer
    get_auth_instance = signer.get_auth_instance
    memo = SigningMemo()

    async def tuned_auth_instance(*args: Any, **kwargs: Any) -> Any:
        auth = await get_auth_instance(*args, **kwargs)
        if type(auth) is not SigV4Auth:
            return auth
        return TunedSigV4Auth(auth.credentials, auth._service_name, auth._region_name, memo=memo)

    signer.get_auth_instance = tuned_auth_instance


def _read_json_with_compiled_shapes(client: Any) -> None:
    """Parse this client's JSON responses with ``json_responses``' compiled shapes.

    The factory is the session's, shared by its clients: this client's
    endpoint gets a factory of its own that wraps it.
    """
    endpoint = client._endpoint
    endpoint._response_parser_factory = TunedParserFactory(endpoint._response_parser_factory)


def _check_params_with_compiled_shapes(client: Any) -> None:
    """Validate this client's parameters through ``param_checks`` first.

    Only botocore's own validator and decorator are wrapped; a client made
    with ``parameter_validation=False`` has neither and stays as it is.
    """
    serializer = client._serializer
    if type(serializer) is not ParamValidationDecorator:
        return
    validator = serializer._param_validator
    if type(validator) is not ParamValidator:
        return
    client._serializer = TunedValidationDecorator(validator, serializer._serializer)
