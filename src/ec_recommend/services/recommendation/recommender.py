"""Puts the store's counts through the scoring rules: what to recommend and why."""

from __future__ import annotations

import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from ec_recommend.platform.errors import NotFound
from ec_recommend.services.recommendation import domain
from ec_recommend.services.recommendation.store import RecommendationStore
from ec_recommend.services.search.domain import ProductSnapshot

# Ask each source for more than the limit: some candidates are filtered out.
OVERFETCH = 3
# Text features change only with the catalogue; reloading them on every
# request is the cost of "similar". Availability is still checked per request.
CANDIDATES_TTL = 10.0

Recommendations = list[tuple[ProductSnapshot, domain.Scored]]


class Recommender:
    def __init__(self, store: RecommendationStore) -> None:
        self.store = store
        self._candidates: tuple[float, dict[str, dict[str, float]]] | None = None

    async def _similarity_candidates(self) -> dict[str, dict[str, float]]:
        now = time.monotonic()
        if self._candidates is None or now - self._candidates[0] > CANDIDATES_TTL:
            self._candidates = (now, await self.store.similarity_candidates())
        return self._candidates[1]

    async def for_product(self, product_id: str, limit: int) -> Recommendations:
        """Bought together (cosine), then similar by text, then popular."""
        found = await self.store.product(product_id)
        if found is None:
            raise NotFound(f"product {product_id} not found", product_id=product_id)
        _, features = found
        neighbours = (await self.store.co_purchases([product_id])).get(product_id, {})
        counts = await self.store.order_counts([product_id, *neighbours])
        together = domain.bought_together(product_id, neighbours, counts)
        sources: list[Sequence[domain.Scored]] = [together]
        if len(together) < limit:
            candidates = await self._similarity_candidates()
            sources.append(domain.similar({product_id: features}, candidates))
            sources.append(await self._popular(limit * OVERFETCH + 1))
        return await self._finish(sources, limit, exclude={product_id})

    async def for_user(self, user_id: str, limit: int) -> Recommendations:
        """From the user's purchases and views; never what they already bought."""
        if not user_id:
            return await self.popular(limit)
        purchases, views = await self.store.history(user_id)
        weights = domain.history_weights(purchases, views)
        if not weights:
            return await self.popular(limit)
        neighbours = await self.store.co_purchases(list(weights))
        involved = set(weights).union(*(set(n) for n in neighbours.values()))
        counts = await self.store.order_counts(involved)
        history = domain.for_you(weights, neighbours, counts, exclude=purchases)
        sources: list[Sequence[domain.Scored]] = [history]
        if len(history) < limit:
            targets = await self.store.features(weights)
            candidates = await self._similarity_candidates()
            sources.append(domain.similar(targets, candidates, exclude=purchases))
            sources.append(await self._popular(limit * OVERFETCH + len(purchases)))
        return await self._finish(sources, limit, exclude=set(purchases))

    async def popular(self, limit: int) -> Recommendations:
        return await self._finish([await self._popular(limit * OVERFETCH)], limit)

    async def _popular(self, limit: int) -> list[domain.Scored]:
        """Best sellers, topped up with the newest catalogue items (cold start)."""
        sold = await self.store.popular(limit)
        if len(sold) < limit:
            sold += await self.store.newest_available(limit)
        return sold

    async def _finish(
        self,
        sources: Sequence[Sequence[domain.Scored]],
        limit: int,
        exclude: AbstractSet[str] = frozenset(),
    ) -> Recommendations:
        candidate_ids = {item.product_id for source in sources for item in source}
        available = await self.store.available(candidate_ids - exclude)
        chosen = domain.merge(sources, limit=limit, available=available, exclude=exclude)
        return [(available[item.product_id], item) for item in chosen]
