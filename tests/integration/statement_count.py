"""Counting the SQL statements a database file runs, on every engine of it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ec_recommend.config import StorageConfig
from ec_recommend.platform.storage.inline_reads import InlineReader
from ec_recommend.platform.storage.prepared import PreparedStatement


@contextmanager
def statements_on(storage: StorageConfig, service: str) -> Iterator[Counter[str]]:
    """Statements run on any engine of ``service``'s database file in ``storage``
    (that file only: an earlier test's engines on a file of the same name,
    still busy in the background, do not count), by their first word,
    and on its connections' drivers outside a recording span, which engine
    events do not see: prepared statements (``PreparedStatement.run``), those
    of ``Database.first`` and ``rows`` on the read connection with the BEGIN
    of each (``InlineReader.run_prepared``) and a unit of work's on the write
    connection."""
    seen: Counter[str] = Counter()
    target = (Path(storage.data_dir) / f"{service}.db").resolve()
    files: dict[str, bool] = {}

    def ours(conn: Any) -> bool:
        database = str(conn.engine.url.database or "")
        if database not in files:
            files[database] = bool(database) and Path(database).resolve() == target
        return files[database]

    def read_prepared(reader: InlineReader, *args: Any) -> Any:
        if ours(reader):
            seen["BEGIN"] += 1  # its statement counts as a PreparedStatement.run
        return real_read(reader, *args)

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

    real_read = InlineReader.run_prepared
    real_run = PreparedStatement.run
    InlineReader.run_prepared = read_prepared  # type: ignore[method-assign]
    PreparedStatement.run = run_prepared  # type: ignore[method-assign]
    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    sa.event.listen(sa.Engine, "begin", begin)
    try:
        yield seen
    finally:
        InlineReader.run_prepared = real_read  # type: ignore[method-assign]
        PreparedStatement.run = real_run  # type: ignore[method-assign]
        sa.event.remove(sa.Engine, "begin", begin)
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
