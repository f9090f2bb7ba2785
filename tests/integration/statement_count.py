"""Counting the SQL statements a database file runs, on every engine of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from ec_recommend.platform.storage.inline_reads import InlineReader
from ec_recommend.platform.storage.prepared import PreparedStatement


@contextmanager
def statements_on(database_file: str) -> Iterator[Counter[str]]:
    """Statements run on any engine of ``database_file``, by their first word,
    and on its connections' drivers outside a recording span, which engine
    events do not see: ``Database.first`` on the read connection, and a unit
    of work's prepared statements on the write connection."""
    seen: Counter[str] = Counter()

    def ours(conn: Any) -> bool:
        return str(conn.engine.url.database or "").endswith(database_file)

    def first(reader: InlineReader, statement: Any, params: Any) -> Any:
        if ours(reader):
            seen.update(("BEGIN", "SELECT"))
        return read_first(reader, statement, params)

    def run_prepared(prepared: PreparedStatement, conn: Any, *args: Any) -> Any:
        if ours(conn):
            seen[prepared.sql.split(None, 1)[0].upper()] += 1
        return real_run(prepared, conn, *args)

    def count(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        word = statement.split(None, 1)[0].upper()
        if ours(conn) and word != "BEGIN":  # counted once below, however it is sent
            seen[word] += 1

    def begin(conn: Any) -> None:
        if ours(conn):
            seen["BEGIN"] += 1

    read_first = InlineReader.first
    real_run = PreparedStatement.run
    InlineReader.first = first  # type: ignore[method-assign]
    PreparedStatement.run = run_prepared  # type: ignore[method-assign]
    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    sa.event.listen(sa.Engine, "begin", begin)
    try:
        yield seen
    finally:
        InlineReader.first = read_first  # type: ignore[method-assign]
        PreparedStatement.run = real_run  # type: ignore[method-assign]
        sa.event.remove(sa.Engine, "begin", begin)
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
