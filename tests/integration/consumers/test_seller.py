"""Seller subscriber and SellerService: ledger on both engines, seller email via moto."""

from __future__ import annotations

import uuid

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import events as pb_events
from ec_recommend._gen.ecommerce import seller as pb
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Config
from ec_recommend.consumers.email import open_email_sender
from ec_recommend.consumers.recipients import Recipients
from ec_recommend.consumers.seller import store
from ec_recommend.consumers.seller.consumer import SellerLedger
from ec_recommend.platform.errors import InvalidArgument, PermissionDenied
from ec_recommend.platform.rpc.context import CallContext, Identity, call_scope
from ec_recommend.platform.storage import open_database
from ec_recommend.runtime.local_aws import LocalAws
from tests.conftest import ServicesFactory
from tests.integration.consumers.conftest import apply, event, order, sent_emails

pytestmark = pytest.mark.asyncio


async def test_ledger_books_paid_lines_once_and_reverses_cancellation(
    config: Config, services: ServicesFactory, local_aws: LocalAws
) -> None:
    seller_email = f"seller-{uuid.uuid4().hex[:10]}@example.com"
    async with (
        services("user", "seller") as hosted,
        open_database(config.storage, "seller", store.MIGRATIONS) as db,
        open_email_sender(
            sender=f"shop-{uuid.uuid4().hex[:8]}@example.com",
            region=local_aws.region,
            endpoint_url=local_aws.endpoint_url,
            verify_sender=True,
        ) as sender,
    ):
        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        seller_user = await users.create_user(
            pb_user.CreateUserRequest(
                cognito_user_id=str(uuid.uuid4()),
                email=seller_email,
                seller_id=f"shop-{uuid.uuid4().hex[:8]}",
            )
        )
        seller_id, other_seller = seller_user.seller_id, str(uuid.uuid4())
        handlers = SellerLedger(sender, Recipients(users)).handlers()
        placed = order(
            [
                (str(uuid.uuid4()), seller_id, 2, 1000),
                (str(uuid.uuid4()), other_seller, 1, 300),
                (str(uuid.uuid4()), seller_id, 1, 500),
            ],
            paid=True,
        )
        paid = event("order.paid", pb_events.OrderPaid(order=placed, payment_id="p"))
        await apply(db, handlers["order.paid"], paid)
        await apply(db, handlers["order.paid"], paid)

        ledger = hosted.clients.stub(pb.SellerServiceStub, "seller")
        response = await ledger.get_seller_ledger(pb.SellerLedgerRequest(seller_id=seller_id))
        assert sorted((e.kind, e.quantity, e.amount.amount) for e in response.entries) == [
            ("sale", 1, 500),
            ("sale", 2, 2000),
        ]
        assert response.balance == pb_common.Money(amount=2500, currency="JPY")
        [mail] = await sent_emails(local_aws.endpoint_url, seller_email)
        assert placed.order_number in mail["body"] and "¥2,500" in mail["body"]
        assert "¥300" not in mail["body"]  # another seller's line

        cancelled = event("order.cancelled", pb_events.OrderCancelled(order=placed, refunded=True))
        await apply(db, handlers["order.cancelled"], cancelled)
        await apply(db, handlers["order.cancelled"], cancelled)
        response = await ledger.get_seller_ledger(
            pb.SellerLedgerRequest(seller_id=seller_id, page=pb_common.PageRequest(page_size=10))
        )
        assert len(response.entries) == 4 and response.balance.amount == 0
        assert response.page.total_items == 4

        # An unpaid order's cancellation books nothing.
        unpaid = order([(str(uuid.uuid4()), other_seller, 1, 300)])
        await apply(
            db,
            handlers["order.cancelled"],
            event("order.cancelled", pb_events.OrderCancelled(order=unpaid)),
        )
        other = await ledger.get_seller_ledger(pb.SellerLedgerRequest(seller_id=other_seller))
        assert [e.amount.amount for e in other.entries] == [300, -300]


async def test_ledger_access_and_validation(config: Config, services: ServicesFactory) -> None:
    async with services("seller") as hosted:
        ledger = hosted.clients.stub(pb.SellerServiceStub, "seller")
        for request in (
            pb.SellerLedgerRequest(seller_id=""),
            pb.SellerLedgerRequest(seller_id="x" * 65),
            pb.SellerLedgerRequest(seller_id="s", page=pb_common.PageRequest(page_size=101)),
            pb.SellerLedgerRequest(seller_id="s", page=pb_common.PageRequest(sort_by="amount")),
        ):
            with pytest.raises(InvalidArgument):
                await ledger.get_seller_ledger(request)
        someone = Identity(user_id="u", roles=frozenset({"seller"}), seller_id="s-other")
        with call_scope(CallContext(identity=someone)), pytest.raises(PermissionDenied):
            await ledger.get_seller_ledger(pb.SellerLedgerRequest(seller_id="s"))
        with call_scope(CallContext(identity=someone)):
            own = await ledger.get_seller_ledger(pb.SellerLedgerRequest(seller_id="s-other"))
        assert own.entries == [] and own.balance.amount == 0
