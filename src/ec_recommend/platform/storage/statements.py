"""Statements built once, executed with parameters.

A Core statement built per call (``insert(t).values(...)``, ``where(c ==
value)``) coerces every value into a bound parameter and generates its cache
key again before SQLAlchemy finds the compiled form in its cache: on the
checkout path that was about a fifth of ``up``'s CPU. A statement object
built once (values as ``bindparam``) and executed with a parameter dict keeps
its cache key, memoized on the object, so a call only binds parameters.

Upserts differ by dialect (``ON CONFLICT`` lives in the dialect's ``insert``),
so they are built once per dialect name, on first use (``PerDialect``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

S = TypeVar("S")


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT with ``on_conflict_do_*`` for ``dialect`` (SQLite or PostgreSQL)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def prefixed_binds(table: sa.Table, prefix: str, names: Sequence[str]) -> dict[str, Any]:
    """``table``'s columns ``names`` as parameters named ``prefix`` + column,
    so that one statement writing rows of several tables names each apart."""
    return {name: sa.bindparam(prefix + name, type_=table.c[name].type) for name in names}


def prefixed(prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row``'s values under the names ``prefixed_binds`` gives them."""
    return {prefix + name: value for name, value in row.items()}


class PerDialect(Generic[S]):
    """``build(dialect_name)``, called once per dialect: ``STATEMENT(uow.dialect)``."""

    def __init__(self, build: Callable[[str], S]) -> None:
        self._build = build
        self._built: dict[str, S] = {}
        self._lock = threading.Lock()  # engines' threads may build too

    def __call__(self, dialect: str) -> S:
        built = self._built.get(dialect)
        if built is None:
            with self._lock:
                built = self._built.get(dialect)
                if built is None:
                    built = self._built[dialect] = self._build(dialect)
        return built
