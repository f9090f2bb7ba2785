"""Realistic shoppers and sellers against a running ec-recommend gateway (Locust).

Start the system, then run it headless for a minute; Locust prints a summary:

    .venv/bin/ec-recommend up
    .venv/bin/locust -f loadgen/locustfile.py --headless --host http://127.0.0.1:8080 \\
        --users 20 --spawn-rate 5 --run-time 60s --only-summary

Shoppers sign up once (a fresh account each) and reuse their token: they
browse the catalogue, search in Japanese and English, view products, fill a
cart, check out with the sandbox's cards (some declined: ``--decline-rate``)
and follow their orders' status. Sellers log in as the demo seller, who owns
the demo catalogue, and restock it. The share of sellers (``--seller-share``),
the shoppers' task mix (``--shopper-mix browse=4,search=3,...``) and the pause
between tasks (``--think-min``/``--think-max`` seconds) are options.

Expected answers are not failures: a declined card (402) and a product sold
out meanwhile (409) are counted under their own names; anything else that is
not 2xx is a failure, and Locust then exits with status 1.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, events, task
from locust.clients import ResponseContextManager

PASSWORD = "Loadgen-passw0rd"
DEMO_SELLER = ("seller@example.com", "Demo-password-1")
SEARCH_TERMS = ("イヤホン", "ワイヤレス", "充電", "ケーブル", "earphones", "wireless", "USB", "bag")
CARDS = ("tok_visa", "tok_mastercard")
DECLINED_CARD = "tok_chargeDeclined"
SHOPPER_TASKS = ("browse", "search", "view", "add_to_cart", "checkout", "follow_orders")
DEFAULT_MIX = "browse=4,search=3,view=3,add_to_cart=2,checkout=1,follow_orders=1"
# Anonymous calls (sign-up, log-in) share a small per-address budget: wait when told to.
MAX_AUTH_ATTEMPTS = 10


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    group = parser.add_argument_group("ec-recommend shoppers")
    group.add_argument(
        "--seller-share", type=float, default=0.1, help="share of users who are sellers (0..1)"
    )
    group.add_argument(
        "--decline-rate", type=float, default=0.1, help="share of payments with a declined card"
    )
    group.add_argument(
        "--shopper-mix", default=DEFAULT_MIX, help=f"task weights (default {DEFAULT_MIX})"
    )
    group.add_argument("--think-min", type=float, default=0.5, help="seconds between tasks, least")
    group.add_argument("--think-max", type=float, default=2.0, help="seconds between tasks, most")


def _parse_mix(text: str) -> dict[str, int]:
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in SHOPPER_TASKS or not weight.strip().isdigit():
            raise ValueError(f"--shopper-mix: expected NAME=WEIGHT with NAME in {SHOPPER_TASKS}")
        mix[name.strip()] = int(weight)
    return mix


@events.init.add_listener
def _configure(environment: Any, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    share = min(max(options.seller_share, 0.0), 1.0)
    # Locust spreads users over classes by integer weight.
    Seller.weight = round(share * 100)
    Shopper.weight = 100 - Seller.weight
    think = between(options.think_min, max(options.think_min, options.think_max))
    Shopper.wait_time = Seller.wait_time = think
    Shopper.mix = _parse_mix(options.shopper_mix)
    Shopper.decline_rate = options.decline_rate


class _ApiUser(HttpUser):
    abstract = True
    token = ""

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _anonymous_post(self, path: str, payload: dict[str, Any], name: str) -> dict[str, Any]:
        """Sign-up and log-in, waiting out the anonymous rate limit when it answers 429."""
        for _attempt in range(MAX_AUTH_ATTEMPTS):
            with self.client.post(path, json=payload, name=name, catch_response=True) as reply:
                if reply.status_code == 429:
                    reply.success()  # the budget, not the system, said wait
                    wait = float(reply.headers.get("Retry-After", "1"))
                    time.sleep(min(max(wait, 0.5), 10) * random.uniform(1.0, 1.5))
                    continue
                if not reply.ok:
                    reply.failure(f"{reply.status_code}: {reply.text[:200]}")
                    raise RuntimeError(f"{name} failed: {reply.status_code}")
                body: dict[str, Any] = reply.json()
                return body
        raise RuntimeError(f"{name}: still rate limited after {MAX_AUTH_ATTEMPTS} tries")

    def _login(self, email: str, password: str) -> None:
        tokens = self._anonymous_post(
            "/auth/login", {"email": email, "password": password}, "/auth/login"
        )
        self.token = tokens["id_token"]

    def _products(self) -> list[dict[str, Any]]:
        reply = self.client.get(
            "/api/v1/products?page_size=50", headers=self._auth(), name="/api/v1/products"
        )
        items: list[dict[str, Any]] = reply.json()["items"] if reply.ok else []
        return items


def _expected(reply: ResponseContextManager, *statuses: int) -> bool:
    """2xx or one of ``statuses`` is a success; anything else is a failure. True if 2xx."""
    if reply.ok:
        return True
    if reply.status_code in statuses:
        reply.success()
    else:
        reply.failure(f"{reply.status_code}: {reply.text[:200]}")
    return False


class Shopper(_ApiUser):
    """Browses, searches, views, fills a cart, checks out, follows its orders."""

    weight = 90
    wait_time = between(0.5, 2.0)
    mix: dict[str, int] = {}  # set from --shopper-mix at init
    decline_rate = 0.1

    def on_start(self) -> None:
        self.email = f"shopper-{uuid.uuid4().hex[:12]}@loadgen.example.com"
        self._anonymous_post(
            "/auth/signup",
            {"email": self.email, "password": PASSWORD, "display_name": "Load Shopper"},
            "/auth/signup",
        )
        self._login(self.email, PASSWORD)
        self.seen: list[str] = [p["id"] for p in self._products()]
        self.orders: list[str] = []
        self.in_cart = 0
        weights = self.mix or _parse_mix(DEFAULT_MIX)
        self.plan = [getattr(self, name) for name in SHOPPER_TASKS for _ in range(weights[name])]

    @task
    def shop(self) -> None:
        random.choice(self.plan)()

    def browse(self) -> None:
        self.seen = [p["id"] for p in self._products()] or self.seen

    def search(self) -> None:
        term = random.choice(SEARCH_TERMS)
        reply = self.client.get(
            "/api/v1/search/products",
            params={"q": term, "page_size": 20},
            headers=self._auth(),
            name="/api/v1/search/products",
        )
        if reply.ok:
            self.seen += [item["product"]["id"] for item in reply.json()["items"]]
            self.seen = self.seen[-100:]

    def view(self) -> None:
        if self.seen:
            self.client.get(
                f"/api/v1/products/{random.choice(self.seen)}",
                headers=self._auth(),
                name="/api/v1/products/{id}",
            )

    def add_to_cart(self) -> None:
        if not self.seen:
            return
        with self.client.post(
            "/api/v1/cart/items",
            json={"product_id": random.choice(self.seen), "quantity": random.randint(1, 2)},
            headers=self._auth(),
            name="/api/v1/cart/items",
            catch_response=True,
        ) as reply:
            if _expected(reply, 409):  # sold out or archived meanwhile
                self.in_cart += 1

    def checkout(self) -> None:
        if not self.in_cart:
            self.add_to_cart()
            if not self.in_cart:
                return
        with self.client.post(
            "/api/v1/orders",
            json={"from_cart": True},
            headers={**self._auth(), "Idempotency-Key": uuid.uuid4().hex},
            name="/api/v1/orders",
            catch_response=True,
        ) as reply:
            if not _expected(reply, 409):  # short stock: nothing was reserved
                self.client.delete("/api/v1/cart", headers=self._auth(), name="/api/v1/cart")
                self.in_cart = 0
                return
            order_id = reply.json()["id"]
        self.in_cart = 0
        self.orders = [*self.orders[-9:], order_id]
        declined = random.random() < self.decline_rate
        card = DECLINED_CARD if declined else random.choice(CARDS)
        name = "/api/v1/orders/{id}/payment"
        with self.client.post(
            f"/api/v1/orders/{order_id}/payment",
            json={"payment_method": {"type": "card", "token": card}},
            headers={**self._auth(), "Idempotency-Key": uuid.uuid4().hex},
            name=f"{name} (declined)" if declined else name,
            catch_response=True,
        ) as reply:
            # a declined card is a 402 and the order stays payable; only that is expected
            _expected(reply, *((402,) if declined else ()))

    def follow_orders(self) -> None:
        if self.orders:
            self.client.get(
                f"/api/v1/orders/{random.choice(self.orders)}",
                headers=self._auth(),
                name="/api/v1/orders/{id}",
            )
        else:
            self.client.get("/api/v1/orders", headers=self._auth(), name="/api/v1/orders")


class Seller(_ApiUser):
    """The demo seller restocking the demo catalogue."""

    weight = 10
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self._login(*DEMO_SELLER)
        self.catalogue = [p["id"] for p in self._products()]

    @task
    def restock(self) -> None:
        if not self.catalogue:
            return
        product_id = random.choice(self.catalogue)
        self.client.get(
            f"/api/v1/products/{product_id}/stock",
            headers=self._auth(),
            name="/api/v1/products/{id}/stock",
        )
        self.client.put(
            f"/api/v1/products/{product_id}/stock",
            json={"delta": random.randint(1, 10)},
            headers=self._auth(),
            name="/api/v1/products/{id}/stock (update)",
        )
