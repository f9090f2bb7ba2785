"""What running a statement gives back.

``StatementResult`` is what callers of ``UnitOfWork.execute`` use of a
SQLAlchemy ``CursorResult``; ``PreparedResult`` offers just that for a
prepared statement (``prepared``), with the same behaviour: rows are
consumed once, ``first`` and ``one`` close the result, and a statement that
returns no rows raises ``ResourceClosedError`` when asked for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import Row
from sqlalchemy import exc as sa_exc


class StatementResult(Protocol):
    """What callers use of a statement's result, ``CursorResult`` or ``PreparedResult``."""

    @property
    def rowcount(self) -> int: ...

    @property
    def inserted_primary_key(self) -> Any: ...

    def __iter__(self) -> Iterator[Row[Any]]: ...

    def first(self) -> Row[Any] | None: ...

    def all(self) -> Sequence[Row[Any]]: ...

    def one(self) -> Row[Any]: ...

    def one_or_none(self) -> Row[Any] | None: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def scalar_one_or_none(self) -> Any: ...


# The rows of a result SQLAlchemy has already read and soft-closed (an
# INSERT's RETURNING of its generated key): every take gives none, and never fails.
SOFT_CLOSED: tuple[Row[Any], ...] = ()


class PreparedResult:
    """A prepared statement's result: the parts of ``CursorResult`` callers use,
    with its behaviour (rows consumed once; closed after ``first`` and ``one``)."""

    __slots__ = ("_inserted", "_rows", "rowcount")

    def __init__(
        self,
        rowcount: int,
        rows: list[Row[Any]] | tuple[Row[Any], ...] | None,
        inserted: Callable[[], Any] | None = None,
    ) -> None:
        """``rows``: None for a statement that returns none (``SOFT_CLOSED``:
        none, read already); ``inserted``
        gives the primary key of a single-row INSERT (none for another)."""
        self.rowcount = rowcount
        self._rows = rows
        self._inserted = inserted

    @property
    def inserted_primary_key(self) -> Any:
        if self._inserted is None:
            raise sa_exc.InvalidRequestError(
                "Statement is not a single-row insert() without returning()"
            )
        return self._inserted()

    def _take(self) -> list[Row[Any]]:
        rows = self._rows
        if rows is SOFT_CLOSED:
            return []
        if rows is None:
            raise sa_exc.ResourceClosedError(
                "This result object does not return rows. It has been closed automatically."
            )
        self._rows = []
        return rows  # type: ignore[return-value]  # a list: SOFT_CLOSED returned above

    def _close(self) -> list[Row[Any]]:
        rows = self._take()
        if self._rows is not SOFT_CLOSED:
            self._rows = None
        return rows

    def __iter__(self) -> Iterator[Row[Any]]:
        return iter(self._take())

    def all(self) -> list[Row[Any]]:
        return self._take()

    def first(self) -> Row[Any] | None:
        rows = self._close()
        return rows[0] if rows else None

    def one_or_none(self) -> Row[Any] | None:
        rows = self._close()
        if len(rows) > 1:
            raise sa_exc.MultipleResultsFound(
                "Multiple rows were found when one or none was required"
            )
        return rows[0] if rows else None

    def one(self) -> Row[Any]:
        rows = self._close()
        if not rows:
            raise sa_exc.NoResultFound("No row was found when one was required")
        if len(rows) > 1:
            raise sa_exc.MultipleResultsFound(
                "Multiple rows were found when exactly one was required"
            )
        return rows[0]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]
