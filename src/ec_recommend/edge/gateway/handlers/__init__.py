"""REST endpoints: each module declares its operations; handlers only transcode."""

from __future__ import annotations

from ec_recommend.edge.gateway.handlers import (
    admin,
    auth,
    cart,
    orders,
    products,
    recommendations,
    search,
    sellers,
    users,
)
from ec_recommend.edge.gateway.routes import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = (
    *auth.ENDPOINTS,
    *users.ENDPOINTS,
    *products.ENDPOINTS,
    *cart.ENDPOINTS,
    *orders.ENDPOINTS,
    *search.ENDPOINTS,
    *recommendations.ENDPOINTS,
    *sellers.ENDPOINTS,
    *admin.ENDPOINTS,
)
