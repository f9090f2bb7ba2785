"""What an endpoint handler receives: validated input, the caller, the services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from betterproto2.grpclib.grpclib_client import ServiceStub

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend.platform import errors
from ec_recommend.platform.events.activity import ActivitySender
from ec_recommend.platform.rpc.client import ClientFactory
from ec_recommend.platform.rpc.context import Identity

StubT = TypeVar("StubT", bound=ServiceStub)
# analytics.user_activity sender (platform/events/activity.py); absent without
# events. Defined beside its reader, not in keys.py: keys.py names the route
# table, whose handlers take an ApiRequest, so importing keys here made a circle.
ACTIVITY = web.AppKey("ec_activity", ActivitySender)


@dataclass(frozen=True)
class ApiRequest:
    http: web.Request
    params: Mapping[str, str]
    body: Mapping[str, Any]
    query: Mapping[str, Any]
    identity: Identity | None
    clients: ClientFactory

    def stub(self, stub_type: type[StubT], service: str) -> StubT:
        return self.clients.stub(stub_type, service)

    @property
    def user(self) -> Identity:
        """The authenticated caller (endpoints that need one declare auth=required)."""
        if self.identity is None:
            raise errors.Unauthenticated("a valid bearer token is required")
        return self.identity

    def activity(self) -> ActivitySender | None:
        """Where product views and searches go (None when events are off)."""
        return self.http.app.get(ACTIVITY)

    @property
    def user_id(self) -> str:
        """The caller's user id, or "" for anonymous callers."""
        return "" if self.identity is None else self.identity.user_id

    def page(self) -> pb_common.PageRequest:
        return pb_common.PageRequest(
            page=self.query.get("page", 0),
            page_size=self.query.get("page_size", 0),
            sort_by=self.query.get("sort_by", ""),
            descending=self.query.get("descending", False),
        )


def paged(items: list[Any], page: pb_common.PageResponse | None) -> dict[str, Any]:
    """The contract's list shape: ``{items, page}``."""
    page = page or pb_common.PageResponse()
    return {
        "items": items,
        "page": {
            "total_items": page.total_items,
            "total_pages": page.total_pages,
            "current_page": page.current_page,
            "page_size": page.page_size,
        },
    }
