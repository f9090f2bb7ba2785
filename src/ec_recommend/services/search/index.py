"""The search index: one interface, an SQLite FTS5 and a PostgreSQL implementation.

``open_search_index(db)`` picks the implementation by ``db.dialect``. Writers
(backfill now, the product-event consumer later) call ``upsert`` with a full
snapshot and ``remove``; an older snapshot never overwrites a newer one, so
redelivered or reordered events are harmless. Archived products stay as
tombstone rows (so a late, older event cannot resurrect them) but are never
returned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ec_recommend.platform.paging import Page
from ec_recommend.platform.storage import Database, UnitOfWork, writing
from ec_recommend.services.search import domain
from ec_recommend.services.search.snapshot_rows import snapshot_from_row, snapshot_values
from ec_recommend.services.search.tables import pg_documents, sqlite_documents, sqlite_fts


class SearchIndex(ABC):
    def __init__(self, db: Database, table: sa.Table) -> None:
        self.db = db
        self.table = table

    async def upsert(self, snapshot: domain.ProductSnapshot, uow: UnitOfWork | None = None) -> bool:
        """Store ``snapshot`` unless a newer one is stored; True if it was applied.

        Given ``uow`` (an event consumer's, with its inbox row), the write joins
        it and the caller commits; otherwise it commits its own.
        """
        values = _row(snapshot)
        update = {k: v for k, v in values.items() if k != "product_id"}
        insert = self._insert().values(**values)
        statement = insert.on_conflict_do_update(
            index_elements=[self.table.c.product_id],
            set_=update,
            where=self.table.c.updated_at <= insert.excluded.updated_at,
        )
        async with writing(self.db, uow) as work:
            applied = (await work.execute(statement)).rowcount > 0
            if applied:
                await self._after_write(work, snapshot)
        return applied

    async def remove(self, product_id: str, uow: UnitOfWork | None = None) -> None:
        async with writing(self.db, uow) as work:
            await work.execute(sa.delete(self.table).where(self.table.c.product_id == product_id))
            await self._after_write(work, None, product_id)

    async def get(self, product_id: str) -> domain.ProductSnapshot | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(
                    sa.select(self.table).where(self.table.c.product_id == product_id)
                )
            ).first()
        return None if row is None else snapshot_from_row(row)

    async def search(
        self, terms: Sequence[str], filters: domain.SearchFilters, page: Page
    ) -> tuple[list[domain.SearchHit], int]:
        """Hits matching every term (as a substring of name or description)."""
        t = self.table
        source, conditions, rank = self._text_match(terms)
        conditions = [*conditions, *self._filters(filters)]
        score: Any = sa.literal(0.0, sa.Float)
        if terms:
            score = _tier(t, terms) + rank / (1.0 + rank)
        score = score.label("score")
        if page.sort_by == "relevance":
            order = [score.desc(), t.c.created_at.desc()]
        else:
            column = {"price": t.c.price, "created_at": t.c.created_at, "name": t.c.name_norm}[
                page.sort_by
            ]
            order = [column.desc() if page.descending else column.asc()]
        query = (
            sa.select(*_columns(t), score)
            .select_from(source)
            .where(*conditions)
            .order_by(*order, t.c.product_id)
            .limit(page.size)
            .offset(page.offset)
        )
        count = sa.select(sa.func.count()).select_from(source).where(*conditions)
        async with self.db.reading() as conn:
            rows = (await conn.execute(query)).all()
            total = (await conn.execute(count)).scalar_one()
        return [domain.SearchHit(snapshot_from_row(r), float(r.score)) for r in rows], int(total)

    def _filters(self, filters: domain.SearchFilters) -> list[Any]:
        t = self.table
        conditions: list[Any] = [t.c.status != domain.ARCHIVED]
        if filters.min_price is not None:
            conditions.append(t.c.price >= filters.min_price)
        if filters.max_price is not None:
            conditions.append(t.c.price <= filters.max_price)
        if filters.seller_id:
            conditions.append(t.c.seller_id == filters.seller_id)
        if filters.in_stock:
            conditions += [t.c.stock > 0, t.c.status == domain.ACTIVE]
        return conditions

    def _substring(self, term: str) -> Any:
        t = self.table
        return sa.or_(
            t.c.name_norm.contains(term, autoescape=True),
            t.c.description_norm.contains(term, autoescape=True),
        )

    @abstractmethod
    def _insert(self) -> Any: ...

    @abstractmethod
    async def _after_write(
        self, uow: UnitOfWork, snapshot: domain.ProductSnapshot | None, product_id: str = ""
    ) -> None: ...

    @abstractmethod
    def _text_match(self, terms: Sequence[str]) -> tuple[Any, list[Any], Any]:
        """(FROM clause, match conditions, text rank >= 0) for ``terms``."""


class SqliteSearchIndex(SearchIndex):
    """FTS5 with the trigram tokenizer; bm25 weights name hits 10x description hits."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, sqlite_documents)

    def _insert(self) -> Any:
        return sqlite_insert(self.table)

    async def _after_write(
        self, uow: UnitOfWork, snapshot: domain.ProductSnapshot | None, product_id: str = ""
    ) -> None:
        product_id = snapshot.id if snapshot is not None else product_id
        await uow.execute(sa.delete(sqlite_fts).where(sqlite_fts.c.product_id == product_id))
        if snapshot is not None and snapshot.searchable:
            await uow.execute(
                sa.insert(sqlite_fts).values(
                    product_id=snapshot.id,
                    name_norm=domain.normalize(snapshot.name),
                    description_norm=domain.normalize(snapshot.description),
                )
            )

    def _text_match(self, terms: Sequence[str]) -> tuple[Any, list[Any], Any]:
        long_terms = [term for term in terms if len(term) >= domain.TRIGRAM]
        # The trigram index cannot look up 1-2 character terms: LIKE scans for those.
        conditions = [self._substring(term) for term in terms if len(term) < domain.TRIGRAM]
        if not long_terms:
            return self.table, conditions, sa.literal(0.0, sa.Float)
        fts: Any = sa.literal_column(sqlite_fts.name)
        matches = (
            sa.select(
                sqlite_fts.c.product_id,
                (-sa.func.bm25(fts, 10.0, 1.0)).label("rank"),
            )
            .where(fts.op("MATCH")(" AND ".join(domain.fts5_phrase(t) for t in long_terms)))
            .subquery("matches")
        )
        source = self.table.join(matches, matches.c.product_id == self.table.c.product_id)
        return source, conditions, matches.c.rank


class PostgresSearchIndex(SearchIndex):
    """tsvector + GIN ranks (name weight A, description B); pg_trgm serves substrings."""

    def __init__(self, db: Database) -> None:
        super().__init__(db, pg_documents)

    def _insert(self) -> Any:
        return pg_insert(self.table)

    async def _after_write(
        self, uow: UnitOfWork, snapshot: domain.ProductSnapshot | None, product_id: str = ""
    ) -> None:
        return None  # the tsvector is a generated column

    def _text_match(self, terms: Sequence[str]) -> tuple[Any, list[Any], Any]:
        if not terms:
            return self.table, [], sa.literal(0.0, sa.Float)
        config: Any = sa.literal_column("'simple'::regconfig")
        document = self.table.c.document
        every_word = sa.func.plainto_tsquery(config, " ".join(terms))
        any_word = sa.func.websearch_to_tsquery(config, " or ".join(terms))
        # Whole-word hits come from the GIN tsvector index; substrings of words
        # (Japanese compounds) from LIKE, which pg_trgm's GIN indexes serve.
        match = sa.or_(document.op("@@")(every_word), sa.and_(*(self._substring(t) for t in terms)))
        return self.table, [match], sa.func.ts_rank(document, any_word) * 10.0


def open_search_index(db: Database) -> SearchIndex:
    if db.is_postgres:
        return PostgresSearchIndex(db)
    if db.dialect == "sqlite":
        return SqliteSearchIndex(db)
    raise ValueError(f"no search index for database dialect {db.dialect!r}")


def _tier(t: sa.Table, terms: Sequence[str]) -> Any:
    in_name = [t.c.name_norm.contains(term, autoescape=True) for term in terms]
    return sa.case(
        (t.c.name_norm == " ".join(terms), domain.TIER_EXACT_NAME),
        (sa.and_(*in_name), domain.TIER_NAME_ALL_TERMS),
        (sa.or_(*in_name), domain.TIER_NAME_SOME_TERM),
        else_=0.0,
    )


def _columns(t: sa.Table) -> list[Any]:
    return [c for c in t.c if c.name != "document"]


def _row(snapshot: domain.ProductSnapshot) -> dict[str, Any]:
    return {
        **snapshot_values(snapshot),
        "name_norm": domain.normalize(snapshot.name),
        "description_norm": domain.normalize(snapshot.description),
        "price": snapshot.effective_price,
    }
