"""The search index's own tables, per engine, and the migration that creates them.

Both engines keep one row per product in ``search_documents`` (the snapshot
plus its normalized text). SQLite adds an FTS5 table with the ``trigram``
tokenizer, so any 3+ character substring is an index lookup (Japanese has no
spaces between words). PostgreSQL adds a generated ``tsvector`` column with a
GIN index for ranked full-text search and, where the ``pg_trgm`` extension can
be installed, trigram GIN indexes that serve substring (LIKE) lookups.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ec_recommend.platform.storage import Migration

log = logging.getLogger(__name__)

FTS_TABLE = "search_fts"
TSVECTOR_SQL = (
    "setweight(to_tsvector('simple'::regconfig, name_norm), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, description_norm), 'B')"
)


def _documents(metadata: sa.MetaData, *extra: sa.Column[object]) -> sa.Table:
    return sa.Table(
        "search_documents",
        metadata,
        sa.Column("product_id", sa.String(36), primary_key=True),
        sa.Column("seller_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("name_norm", sa.Text, nullable=False),
        sa.Column("description_norm", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("base_price", sa.BigInteger, nullable=False),
        sa.Column("sale_price", sa.BigInteger, nullable=True),
        sa.Column("price", sa.BigInteger, nullable=False, index=True),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("images", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        *extra,
    )


sqlite_metadata = sa.MetaData()
sqlite_documents = _documents(sqlite_metadata)
# Declared for queries only; created by raw DDL (a virtual table).
sqlite_fts = sa.Table(
    FTS_TABLE,
    sa.MetaData(),
    sa.Column("product_id", sa.String(36)),
    sa.Column("name_norm", sa.Text),
    sa.Column("description_norm", sa.Text),
)

pg_metadata = sa.MetaData()
pg_documents = _documents(
    pg_metadata,
    sa.Column("document", TSVECTOR, sa.Computed(TSVECTOR_SQL, persisted=True)),
)
sa.Index("search_documents_fts", pg_documents.c.document, postgresql_using="gin")


async def _create(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.run_sync(pg_metadata.create_all)
        await _create_trigram_indexes(conn)
        return
    await conn.run_sync(sqlite_metadata.create_all)
    await conn.exec_driver_sql(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
        "product_id UNINDEXED, name_norm, description_norm, tokenize = 'trigram')"
    )


async def _create_trigram_indexes(conn: AsyncConnection) -> None:
    """Install pg_trgm if allowed; without it substring search still works, unindexed."""
    try:
        async with conn.begin_nested():
            await conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        # Not superuser, or a concurrent CREATE EXTENSION won: check below.
        log.info("search: could not create pg_trgm (%s)", exc.orig)
    schema = (
        await conn.execute(
            sa.text(
                "SELECT n.nspname FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            )
        )
    ).scalar()
    if schema is None:
        log.warning("search: pg_trgm unavailable; substring search will scan")
        return
    opclass = f'"{schema}".gin_trgm_ops'
    # A detached copy of the columns, so the indexes stay out of pg_metadata.
    columns = sa.Table(
        "search_documents",
        sa.MetaData(),
        sa.Column("name_norm", sa.Text),
        sa.Column("description_norm", sa.Text),
    )
    for column in ("name_norm", "description_norm"):
        index = sa.Index(
            f"search_documents_{column}_trgm",
            columns.c[column],
            postgresql_using="gin",
            postgresql_ops={column: opclass},
        )
        await conn.run_sync(index.create)


MIGRATIONS = [Migration(1, _create)]
