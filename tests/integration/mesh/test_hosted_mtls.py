"""host_services under STRICT mTLS with development certificates (as `up --mtls`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.config import Config, RpcConfig, StorageConfig
from ec_recommend.platform import errors
from ec_recommend.platform.security.identity import acting_as
from ec_recommend.platform.security.tls import dev_tls_config
from ec_recommend.runtime.host import host_services
from ec_recommend.runtime.registry import certificate_names

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("in_process", [False, True], ids=["socket", "in_process"])
async def test_services_talk_mtls_and_the_allow_list_follows_the_acting_service(
    tmp_path: Path, in_process: bool
) -> None:
    config = Config(
        storage=StorageConfig(data_dir=tmp_path / "data"),
        rpc=RpcConfig(drain_timeout=2.0, in_process=in_process),
        tls=dev_tls_config(tmp_path / "certs", certificate_names()),
    )
    assert (tmp_path / "certs" / "ca.crt").exists()
    assert (tmp_path / "certs" / "order.crt").exists()
    async with host_services(config, ["user", "product"]) as hosted:
        users = hosted.clients.stub(pb_user.UserServiceStub, "user")
        user = await users.create_user(
            pb_user.CreateUserRequest(cognito_user_id="c1", email="a@example.com")
        )
        assert (await users.get_user(pb_user.GetUserRequest(user_id=user.id))).email

        products = hosted.clients.stub(pb.ProductServiceStub, "product")
        product = await products.create_product(
            pb.CreateProductRequest(
                seller_id="s1",
                name="mug",
                description="a mug",
                base_price=pb_common.Money(amount=1200, currency="JPY"),
                stock_quantity=5,
            )
        )
        lines = [pb.StockLine(product_id=product.id, quantity=1)]
        # the process identity (here the gateway's certificate) never reserves stock
        with pytest.raises(errors.PermissionDenied):
            await products.reserve_stock(pb.ReserveStockRequest(reservation_id="r1", lines=lines))
        # code acting as the cart service presents cart's certificate: denied
        with acting_as("cart"), pytest.raises(errors.PermissionDenied):
            await products.reserve_stock(pb.ReserveStockRequest(reservation_id="r2", lines=lines))
        with acting_as("order"):
            await products.reserve_stock(pb.ReserveStockRequest(reservation_id="r3", lines=lines))
        # the inventory consumer gives stock back, but committing is the order service's
        with acting_as("inventory"), pytest.raises(errors.PermissionDenied):
            await products.commit_stock(pb.ReservationRequest(reservation_id="r3"))
        with acting_as("inventory"):
            await products.release_stock(pb.ReservationRequest(reservation_id="r3"))
        stock = await products.get_stock(pb.GetProductRequest(product_id=product.id))
        assert (stock.reserved_stock, stock.available_stock) == (0, 5)
        accepted = sum(server.connections_accepted for server in hosted.servers.values())
        assert (accepted == 0) is in_process
