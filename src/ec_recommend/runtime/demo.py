"""Demo data for ``ec-recommend up``: a seller, a customer, an operator, a catalogue.

Loaded through the services' own gRPC APIs, so it obeys every rule a real
client does; running it again adds nothing.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from contextlib import suppress

from ec_recommend._gen.ecommerce import common as pb_common
from ec_recommend._gen.ecommerce import product as pb_product
from ec_recommend._gen.ecommerce import user as pb_user
from ec_recommend.platform.errors import AlreadyExists
from ec_recommend.platform.rpc.client import ClientFactory

log = logging.getLogger(__name__)

DEMO_SELLER_ID = "seller-demo"
DEMO_SELLER_EMAIL = "seller@example.com"
DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_USERS = (
    ("demo-seller-sub", "seller@example.com", "Demo Seller"),
    ("demo-customer-sub", "customer@example.com", "Demo Customer"),
    ("demo-admin-sub", DEMO_ADMIN_EMAIL, "Demo Operator"),
)


def demo_group(email: str) -> str:
    """The Cognito group of a demo account: the operator console needs ``admin``."""
    if email == DEMO_SELLER_EMAIL:
        return "seller"
    return "admin" if email == DEMO_ADMIN_EMAIL else "customer"


# (name, description, price in yen, sale price or 0, stock)
CATALOGUE: tuple[tuple[str, str, int, int, int], ...] = (
    ("ワイヤレスイヤホン Pro", "ノイズキャンセリング対応のワイヤレスイヤホン", 19800, 16800, 40),
    ("ワイヤレスイヤホン Lite", "軽量で長時間再生できるイヤホン", 7980, 0, 60),
    ("Bluetooth スピーカー", "防水仕様のポータブルスピーカー", 9800, 0, 25),
    ("USB-C 充電器 65W", "ノートPCも充電できる急速充電器", 4980, 3980, 100),
    ("USB-C ケーブル 2m", "急速充電対応の編み込みケーブル", 1480, 0, 300),
    ("モバイルバッテリー 10000mAh", "薄型で持ち運びやすい", 3980, 0, 80),
    ("スマートウォッチ", "心拍数と睡眠を記録するスマートウォッチ", 24800, 21800, 15),
    ("ノートパソコンスタンド", "アルミ製の折りたたみスタンド", 3480, 0, 50),
    ("メカニカルキーボード", "静音赤軸のテンキーレスキーボード", 12800, 0, 20),
    ("ワイヤレスマウス", "静音クリックのワイヤレスマウス", 2980, 2480, 90),
    ("4K モニター 27インチ", "USB-C 給電対応の 4K モニター", 49800, 44800, 8),
    ("Webカメラ フルHD", "オートフォーカス付きウェブカメラ", 5980, 0, 30),
    ("コーヒー豆 エチオピア 200g", "浅煎りのシングルオリジン", 1680, 0, 120),
    ("コーヒー豆 ブラジル 200g", "中深煎りのやさしい味わい", 1480, 0, 120),
    ("ハンドドリップ ケトル", "注ぎやすい細口ケトル", 4280, 0, 35),
    ("コーヒーミル 手挽き", "セラミック刃の手挽きミル", 3980, 3480, 40),
    ("ドリッパー セット", "ドリッパーとペーパーフィルターのセット", 2280, 0, 70),
    ("マグカップ 350ml", "保温性の高いステンレスマグ", 1980, 0, 150),
    ("緑茶 煎茶 100g", "静岡県産の深蒸し煎茶", 1280, 0, 90),
    ("抹茶 30g", "京都宇治の石臼挽き抹茶", 2480, 0, 45),
    ("ランニングシューズ", "クッション性の高いランニングシューズ", 12800, 9980, 25),
    ("ヨガマット 6mm", "滑りにくいヨガマット", 3280, 0, 40),
    ("ダンベル 5kg ペア", "ラバーコーティングのダンベル", 5480, 0, 20),
    ("プロテイン バニラ 1kg", "ホエイプロテイン", 4980, 4480, 60),
    ("保温ボトル 500ml", "真空断熱のステンレスボトル", 2780, 0, 100),
    ("リュックサック 20L", "撥水加工のデイパック", 8800, 0, 30),
    ("折りたたみ傘", "晴雨兼用の軽量折りたたみ傘", 2980, 0, 80),
    ("文庫本 ブックカバー", "本革のブックカバー", 3300, 0, 40),
    ("万年筆 入門モデル", "書きやすい細字の万年筆", 3850, 0, 30),
    ("ノート A5 方眼", "書き心地のよい方眼ノート 5冊", 1100, 0, 200),
)


async def load_demo_data(clients: ClientFactory, subjects: Mapping[str, str] | None = None) -> int:
    """Create the demo accounts and catalogue unless they exist; returns products added.

    ``subjects`` maps demo emails to the Cognito subjects of real accounts
    (``ec-recommend up`` signs them up so they can log in).
    """
    users = clients.stub(pb_user.UserServiceStub, "user")
    for subject, email, name in DEMO_USERS:
        subject = (subjects or {}).get(email, subject)
        try:
            seller_id = DEMO_SELLER_ID if email == DEMO_SELLER_EMAIL else ""
            await users.create_user(
                pb_user.CreateUserRequest(
                    cognito_user_id=subject, email=email, display_name=name, seller_id=seller_id
                )
            )
        except AlreadyExists:
            log.warning("demo user %s exists from an earlier run with another subject", email)
    products = clients.stub(pb_product.ProductServiceStub, "product")
    existing = await products.list_products(
        pb_product.ListProductsRequest(
            seller_id=DEMO_SELLER_ID, page=pb_common.PageRequest(page_size=1)
        )
    )
    if existing.page is not None and existing.page.total_items > 0:
        return 0
    for name, description, price, sale, stock in CATALOGUE:
        await products.create_product(
            pb_product.CreateProductRequest(
                seller_id=DEMO_SELLER_ID,
                name=name,
                description=description,
                base_price=pb_common.Money(amount=price, currency="JPY"),
                sale_price=pb_common.Money(amount=sale, currency="JPY") if sale else None,
                stock_quantity=stock,
                images=[
                    pb_product.ProductImage(
                        url=f"https://images.example.com/{zlib.crc32(name.encode()):08x}.jpg",
                        alt_text=name,
                    )
                ],
            )
        )
    log.info("demo data: %d products for seller %s", len(CATALOGUE), DEMO_SELLER_ID)
    return len(CATALOGUE)


async def relink_demo_users(clients: ClientFactory, subjects: Mapping[str, str]) -> None:
    """Point the demo users at their new Cognito subjects (a recreated local pool)."""
    users = clients.stub(pb_user.UserServiceStub, "user")
    for _subject, email, name in DEMO_USERS:
        if email not in subjects:
            continue
        seller_id = DEMO_SELLER_ID if email == DEMO_SELLER_EMAIL else ""
        with suppress(AlreadyExists):  # the same subject as before
            await users.create_user(
                pb_user.CreateUserRequest(
                    cognito_user_id=subjects[email],
                    email=email,
                    display_name=name,
                    seller_id=seller_id,
                    relink_email=True,
                )
            )
