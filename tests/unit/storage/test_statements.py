"""Statements built once per dialect, and what that buys: a cache key made once."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ec_recommend.platform.storage.statements import PerDialect, dialect_insert

_metadata = sa.MetaData()
_counts = sa.Table(
    "counts",
    _metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)


def _upsert(dialect: str) -> sa.Insert:
    insert = dialect_insert(dialect, _counts)
    return insert.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[_counts.c.key], set_={"n": _counts.c.n + insert.excluded.n}
    )


def test_a_statement_is_built_once_per_dialect() -> None:
    built: list[str] = []

    def build(dialect: str) -> sa.Insert:
        built.append(dialect)
        return _upsert(dialect)

    statement = PerDialect(build)
    assert statement("sqlite") is statement("sqlite")
    assert statement("postgresql") is statement("postgresql")
    assert statement("sqlite") is not statement("postgresql")
    assert built == ["sqlite", "postgresql"]


def test_each_dialect_gets_its_own_upsert() -> None:
    lite = str(_upsert("sqlite").compile(dialect=sqlite.dialect()))
    pg = str(_upsert("postgresql").compile(dialect=postgresql.dialect()))
    assert "DO UPDATE SET n = (counts.n + excluded.n)" in lite
    assert "DO UPDATE SET n = (counts.n + excluded.n)" in pg
    assert "?" in lite and "%(key)s" in pg


def test_a_statement_kept_keeps_its_cache_key() -> None:
    # Built per call, the cache key is generated again every time; kept, it is memoized.
    kept = _upsert("sqlite")
    assert kept._generate_cache_key() is kept._generate_cache_key()
    assert _upsert("sqlite")._generate_cache_key() is not kept._generate_cache_key()
