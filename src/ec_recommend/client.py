"""Async client for the ec-recommend REST API.

    async with Client("http://127.0.0.1:8080") as api:
        await api.login("customer@example.com", "Demo-password-1")
        products = await api.list_products(page_size=5)
        await api.add_to_cart(products.items[0]["id"], 2)
        order = await api.create_order(from_cart=True)
        await api.pay(order["id"], "tok_visa")

Every error response raises the ``ApiError`` subclass of its ``code``
(``NotFound``, ``Conflict``, ``PaymentDeclined``...) carrying ``status``,
``message``, ``details`` and the ``request_id`` to quote.

``create_order`` and ``pay`` always send an ``Idempotency-Key`` (made here
when not given) and repeat the request with it while the outcome is unknown
(504, a broken connection) or the server asks to come back (503/429 with
``Retry-After``): see ``client_retry.WriteRetry``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from multidict import CIMultiDictProxy

from ec_recommend.client_errors import (
    ERRORS,
    ApiError,
    Conflict,
    Forbidden,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PaymentDeclined,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    Unauthorized,
)
from ec_recommend.client_push import PushSubscription
from ec_recommend.client_retry import NEVER, WriteRetry, repeat_write

# The error types are part of this module's API (``api.NotFound``...).
__all__ = [
    "ERRORS",
    "JSON",
    "NEVER",
    "ApiError",
    "Client",
    "Conflict",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "Page",
    "PaymentDeclined",
    "RateLimited",
    "Response",
    "ServiceUnavailable",
    "Timeout",
    "Tokens",
    "Unauthorized",
    "WriteRetry",
    "error_from",
]

JSON = dict[str, Any]


@dataclass(frozen=True)
class Tokens:
    access_token: str
    id_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class Page:
    """One page of a list: ``items`` and the paging facts."""

    items: list[JSON]
    total_items: int
    total_pages: int
    current_page: int
    page_size: int


@dataclass(frozen=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any


@dataclass
class Client:
    """One caller of the API. ``login`` makes later calls authenticated.

    ``headers`` are sent with every request (e.g. ``X-Forwarded-For`` behind
    a trusted proxy). ``last`` is the most recent response (status, headers).
    ``write_retry`` says how keyed writes are repeated (``NEVER``: not at all).
    """

    base_url: str
    token: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    session: aiohttp.ClientSession | None = None
    tokens: Tokens | None = None
    last: Response | None = None
    write_retry: WriteRetry = field(default_factory=WriteRetry)
    _owns_session: bool = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self.session is not None:
            await self.session.close()
            self.session = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._owns_session = True
        return self.session

    # -- plumbing ------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Response:
        """One request; raises the typed error of an error body unless ``check=False``."""
        sent = dict(self.headers)
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        async with self._session().request(
            method,
            self.base_url.rstrip("/") + path,
            json=json,
            params=query or None,
            headers=sent,
        ) as http:
            raw = await http.read()
            body: Any = None
            if raw and http.content_type == "application/json":
                body = await http.json(content_type=None)
            response = Response(http.status, http.headers, body)
        self.last = response
        if check and response.status >= 400:
            raise error_from(response)
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.request(method, path, **kwargs)).body

    async def keyed_write(
        self, method: str, path: str, payload: JSON, idempotency_key: str | None = None
    ) -> Any:
        """A write under one ``Idempotency-Key``, repeated while its outcome is unknown."""
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        return await repeat_write(
            lambda: self._json(method, path, json=payload, headers=headers), self.write_retry
        )

    async def _page(self, path: str, params: Mapping[str, Any]) -> Page:
        body = await self._json("GET", path, params=params)
        return Page(items=body["items"], **body["page"])

    # -- auth ----------------------------------------------------------------

    async def signup(
        self, email: str, password: str, display_name: str | None = None, role: str | None = None
    ) -> JSON:
        payload = {"email": email, "password": password}
        if display_name is not None:
            payload["display_name"] = display_name
        if role is not None:
            payload["role"] = role
        result: JSON = await self._json("POST", "/auth/signup", json=payload)
        return result

    async def confirm(self, email: str, code: str) -> None:
        await self.request("POST", "/auth/confirm", json={"email": email, "code": code})

    async def login(self, email: str, password: str, *, use: str = "id_token") -> Tokens:
        """Log in; later requests carry the ID token (or ``use="access_token"``)."""
        body = await self._json("POST", "/auth/login", json={"email": email, "password": password})
        self.tokens = Tokens(**body)
        self.token = getattr(self.tokens, use)
        return self.tokens

    async def refresh(self) -> Tokens:
        if self.tokens is None:
            raise RuntimeError("log in first")
        body = await self._json(
            "POST", "/auth/refresh", json={"refresh_token": self.tokens.refresh_token}
        )
        self.tokens = Tokens(**body)
        self.token = self.tokens.id_token
        return self.tokens

    # -- users ---------------------------------------------------------------

    async def me(self) -> JSON:
        result: JSON = await self._json("GET", "/api/v1/users/me")
        return result

    async def update_me(self, **fields: Any) -> JSON:
        result: JSON = await self._json("PUT", "/api/v1/users/me", json=fields)
        return result

    async def deactivate(self) -> None:
        await self.request("DELETE", "/api/v1/users/me")

    async def profile(self) -> JSON:
        result: JSON = await self._json("GET", "/api/v1/users/me/profile")
        return result

    async def update_profile(self, **fields: Any) -> JSON:
        result: JSON = await self._json("PUT", "/api/v1/users/me/profile", json=fields)
        return result

    async def get_user(self, user_id: str) -> JSON:
        result: JSON = await self._json("GET", f"/api/v1/users/{user_id}")
        return result

    # -- products ------------------------------------------------------------

    async def list_products(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        sort_by: str | None = None,
        descending: bool | None = None,
        seller_id: str | None = None,
        status: str | None = None,
    ) -> Page:
        return await self._page(
            "/api/v1/products",
            {
                "page": page,
                "page_size": page_size,
                "sort_by": sort_by,
                "descending": descending,
                "seller_id": seller_id,
                "status": status,
            },
        )

    async def get_product(self, product_id: str) -> JSON:
        result: JSON = await self._json("GET", f"/api/v1/products/{product_id}")
        return result

    async def create_product(
        self,
        name: str,
        base_price: int,
        stock_quantity: int,
        *,
        description: str = "",
        sale_price: int | None = None,
        images: Sequence[Mapping[str, str]] = (),
        currency: str = "JPY",
    ) -> JSON:
        payload: JSON = {
            "name": name,
            "description": description,
            "base_price": {"amount": base_price, "currency": currency},
            "stock_quantity": stock_quantity,
            "images": [dict(i) for i in images],
        }
        if sale_price is not None:
            payload["sale_price"] = {"amount": sale_price, "currency": currency}
        result: JSON = await self._json("POST", "/api/v1/products", json=payload)
        return result

    async def update_product(self, product_id: str, **fields: Any) -> JSON:
        """Change only ``fields`` (JSON shape, e.g. ``base_price={"amount": 100}``)."""
        result: JSON = await self._json("PUT", f"/api/v1/products/{product_id}", json=fields)
        return result

    async def archive_product(self, product_id: str) -> None:
        await self.request("DELETE", f"/api/v1/products/{product_id}")

    async def get_stock(self, product_id: str) -> JSON:
        result: JSON = await self._json("GET", f"/api/v1/products/{product_id}/stock")
        return result

    async def update_stock(
        self, product_id: str, *, delta: int | None = None, quantity: int | None = None
    ) -> JSON:
        payload = {"delta": delta} if delta is not None else {"quantity": quantity}
        result: JSON = await self._json("PUT", f"/api/v1/products/{product_id}/stock", json=payload)
        return result

    async def list_reviews(
        self, product_id: str, *, page: int | None = None, page_size: int | None = None
    ) -> Page:
        return await self._page(
            f"/api/v1/products/{product_id}/reviews", {"page": page, "page_size": page_size}
        )

    async def create_review(self, product_id: str, rating: int, comment: str = "") -> JSON:
        result: JSON = await self._json(
            "POST",
            f"/api/v1/products/{product_id}/reviews",
            json={"rating": rating, "comment": comment},
        )
        return result

    # -- cart ----------------------------------------------------------------

    async def cart(self) -> JSON:
        result: JSON = await self._json("GET", "/api/v1/cart")
        return result

    async def add_to_cart(self, product_id: str, quantity: int = 1) -> JSON:
        result: JSON = await self._json(
            "POST", "/api/v1/cart/items", json={"product_id": product_id, "quantity": quantity}
        )
        return result

    async def set_cart_quantity(self, product_id: str, quantity: int) -> JSON:
        result: JSON = await self._json(
            "PUT", f"/api/v1/cart/items/{product_id}", json={"quantity": quantity}
        )
        return result

    async def remove_from_cart(self, product_id: str) -> JSON:
        result: JSON = await self._json("DELETE", f"/api/v1/cart/items/{product_id}")
        return result

    async def clear_cart(self) -> None:
        await self.request("DELETE", "/api/v1/cart")

    # -- orders --------------------------------------------------------------

    async def create_order(
        self,
        items: Sequence[tuple[str, int]] | None = None,
        *,
        from_cart: bool = False,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Order ``items`` (product id, quantity) or the cart; a key is made if not given.

        Repeated with the same key while the outcome is unknown, so one call
        places at most one order.
        """
        payload: JSON = (
            {"from_cart": True}
            if from_cart
            else {"items": [{"product_id": p, "quantity": q} for p, q in items or ()]}
        )
        result: JSON = await self.keyed_write("POST", "/api/v1/orders", payload, idempotency_key)
        return result

    async def list_orders(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: str | None = None,
        seller_id: str | None = None,
        user_id: str | None = None,
        sort_by: str | None = None,
        descending: bool | None = None,
    ) -> Page:
        """The caller's orders; ``seller_id``: a seller's orders; ``user_id``: admins only."""
        return await self._page(
            "/api/v1/orders",
            {
                "page": page,
                "page_size": page_size,
                "status": status,
                "seller_id": seller_id,
                "user_id": user_id,
                "sort_by": sort_by,
                "descending": descending,
            },
        )

    async def get_order(self, order_id: str) -> JSON:
        result: JSON = await self._json("GET", f"/api/v1/orders/{order_id}")
        return result

    async def pay(
        self, order_id: str, token: str = "tok_visa", *, idempotency_key: str | None = None
    ) -> JSON:
        """Pay an order; like ``create_order``, repeated with one key until definite."""
        result: JSON = await self.keyed_write(
            "POST",
            f"/api/v1/orders/{order_id}/payment",
            {"payment_method": {"type": "card", "token": token}},
            idempotency_key,
        )
        return result

    async def update_order_status(
        self, order_id: str, status: str, reason: str | None = None
    ) -> JSON:
        payload = {"status": status} | ({"reason": reason} if reason else {})
        result: JSON = await self._json("PUT", f"/api/v1/orders/{order_id}/status", json=payload)
        return result

    async def cancel_order(self, order_id: str, reason: str | None = None) -> JSON:
        return await self.update_order_status(order_id, "CANCELLED", reason)

    # -- search and recommendations -------------------------------------------

    async def search(
        self,
        q: str | None = None,
        *,
        min_price: int | None = None,
        max_price: int | None = None,
        seller_id: str | None = None,
        in_stock: bool | None = None,
        sort_by: str | None = None,
        descending: bool | None = None,
        page: int | None = None,
        page_size: int | None = None,
    ) -> Page:
        """Items are ``{"product": {...}, "score": float}``, most relevant first."""
        return await self._page(
            "/api/v1/search/products",
            {
                "q": q,
                "min_price": min_price,
                "max_price": max_price,
                "seller_id": seller_id,
                "in_stock": in_stock,
                "sort_by": sort_by,
                "descending": descending,
                "page": page,
                "page_size": page_size,
            },
        )

    async def product_recommendations(
        self, product_id: str, limit: int | None = None
    ) -> list[JSON]:
        body = await self._json(
            "GET", f"/api/v1/recommendations/products/{product_id}", params={"limit": limit}
        )
        items: list[JSON] = body["items"]
        return items

    async def recommendations_for_you(self, limit: int | None = None) -> list[JSON]:
        body = await self._json("GET", "/api/v1/recommendations/for-you", params={"limit": limit})
        items: list[JSON] = body["items"]
        return items

    async def popular_products(self, limit: int | None = None) -> list[JSON]:
        body = await self._json("GET", "/api/v1/recommendations/popular", params={"limit": limit})
        items: list[JSON] = body["items"]
        return items

    # -- seller desk (sellers only) -------------------------------------------

    async def my_ledger(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        descending: bool | None = None,
    ) -> JSON:
        """The calling seller's ledger: ``{entries, balance, page}``."""
        result: JSON = await self._json(
            "GET",
            "/api/v1/sellers/me/ledger",
            params={"page": page, "page_size": page_size, "descending": descending},
        )
        return result

    async def my_product_analytics(
        self,
        *,
        page: int | None = None,
        page_size: int | None = None,
        status: str | None = None,
        sort_by: str | None = None,
        descending: bool | None = None,
    ) -> Page:
        """Views, paid quantity, conversion and revenue of the calling seller's products."""
        return await self._page(
            "/api/v1/sellers/me/analytics",
            {
                "page": page,
                "page_size": page_size,
                "status": status,
                "sort_by": sort_by,
                "descending": descending,
            },
        )

    # -- operator console (admins only) ---------------------------------------

    async def admin_overview(self) -> JSON:
        """Service health, circuit breakers, outboxes, rate-limit rejections, traffic."""
        result: JSON = await self._json("GET", "/api/v1/admin/overview")
        return result

    async def admin_queues(self) -> list[JSON]:
        """Each event queue's depth, messages in flight and dead letters."""
        body = await self._json("GET", "/api/v1/admin/queues")
        items: list[JSON] = body["items"]
        return items

    async def redrive_dead_letters(self, queue: str) -> int:
        """Move a queue's dead letters back to it; how many moved."""
        body = await self._json("POST", f"/api/v1/admin/queues/{queue}/redrive")
        return int(body["moved"])

    async def purge_dead_letters(self, queue: str) -> None:
        await self.request("POST", f"/api/v1/admin/queues/{queue}/purge")

    # -- real-time push ------------------------------------------------------

    def subscribe(
        self, *topics: str, last_event_id: str | None = None, auth: str = "header"
    ) -> PushSubscription:
        """``async with api.subscribe("orders") as messages: async for m in messages``."""
        return PushSubscription(self, topics, last_event_id=last_event_id, auth=auth)

    # -- operations ------------------------------------------------------------

    async def ready(self) -> bool:
        return (await self.request("GET", "/readyz", check=False)).status == 200

    async def openapi(self) -> JSON:
        result: JSON = await self._json("GET", "/api/v1/openapi.json")
        return result


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_from(response: Response) -> ApiError:
    """The typed error of an error response (``InternalError`` if the body is not ours)."""
    body = response.body if isinstance(response.body, dict) else {}
    code = str(body.get("code", ""))
    cls = ERRORS.get(code)
    if cls is None:
        cls = InternalError if response.status >= 500 else ApiError
    details = body.get("details")
    return cls(
        response.status,
        str(body.get("message", "")) or f"HTTP {response.status}",
        {str(k): str(v) for k, v in details.items()} if isinstance(details, dict) else None,
        code=code or None,
        request_id=response.headers.get("X-Request-ID", ""),
        headers=dict(response.headers),
    )
