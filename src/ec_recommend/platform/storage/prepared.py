"""Statements compiled once and run on the DB-API connection (SQLite's, or
SQLAlchemy's asyncpg adapter on PostgreSQL).

SQLAlchemy's work around each execution (its execution context, the compiled
cache's lookup by cache key, ``construct_params``, result metadata, events)
costs 25-37 µs a statement where sqlite3 itself takes 3-4 µs, and an order
runs 45-67 statements. A statement object
built once (``statements``) can be compiled once too, for each shape of
parameters it is run with, exactly as ``Connection.execute`` compiles it
(the same column keys, the same executemany flag); a run then only binds
values and calls the driver.

Everything that decides a value stays SQLAlchemy's: the SQL (its compiler),
the bind and result processors (values go in and come back as they would
through it), the rows (its ``Row``), the errors (``DBAPIError.instance``: an
IntegrityError stays an IntegrityError). Only bookkeeping is skipped: the
execution context and the engine events, so callers take this way only where
no span would record the statement.

An expanding parameter (``IN``) is rendered by SQLAlchemy per execution,
from the number of values it is given (``IN (?, ?, ?)``): such a statement
is prepared once per number of values of each (``Expanding``), its SQL and
the place of each value from SQLAlchemy's own expansion (with numbered
placeholders, ``$1``, it numbers the expanded values after the others),
each value bound with the parameter's processor as SQLAlchemy binds it, for
up to ``MAX_EXPANSIONS`` lengths a statement (more run through SQLAlchemy).

An executemany runs as SQLAlchemy runs it on SQLite: without RETURNING,
the driver's ``executemany`` of the one-row SQL; an INSERT with RETURNING
("insertmanyvalues") as one statement of as many VALUES rows as parameter
sets, whose rows come back in the database's order (SQLAlchemy sorts them
only when asked to, by a sentinel column: not prepared). Such a statement is
prepared once per number of rows (``ManyRows``), its SQL and the order of
its values from SQLAlchemy's own batching, for up to ``MAX_ROW_COUNTS``
numbers a statement and one batch of rows (more run through SQLAlchemy).

On PostgreSQL a service's tables live in its own schema, named at run time
by the engine's ``schema_translate_map``: a statement is compiled with that
map and its schema names rendered into the SQL, as SQLAlchemy does on each
execution. There a statement runs on asyncpg directly (``run_async``), not
through the adapter's DB-API cursor inside SQLAlchemy's greenlet: the
greenlet switches and the cursor cost ~30 µs a statement, a third of a
round trip's CPU. It still goes through the adapter's own parts: its lock,
its transaction (begun on the first statement, as its cursor begins it, and
committed by SQLAlchemy), its cache of asyncpg's prepared statements and
its translation of asyncpg's errors; a disconnect invalidates the
connection as SQLAlchemy's own execution would. An executemany keeps the
cursor's way (``run`` in the greenlet).

Where SQLAlchemy does more than bind and execute, the statement is not
prepared (``NotPreparable``, decided once per statement and parameter shape)
and runs through SQLAlchemy: literal-execute parameters, expanding ones
whose rendering depends on the values (tuples, untyped) or in an INSERT or
executemany, Python-side column defaults, implicit RETURNING but a one-row
INSERT's generated key (PostgreSQL's serial: prepared, the key read from the
row it returns), executemany with RETURNING but an INSERT in plain batches
of VALUES, and any statement but a Core SELECT, INSERT, UPDATE or DELETE.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import chain
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import Connection, Delete, Dialect, Insert, Row, Select, Update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.util import _long_statement

from ec_recommend.platform.storage.results import SOFT_CLOSED, PreparedResult

_PREPARABLE: Final = (Select, Insert, Update, Delete)
_REQUIRED: Final = object()  # a parameter with no value of its own

# Lengths of an expanding statement's values prepared, at most: a compile
# each (~0.2 ms); past them the statement runs through SQLAlchemy, whose
# compiled form serves every length, rather than compiling again and again.
MAX_EXPANSIONS: Final = 32
# Likewise the numbers of rows an executemany with RETURNING is prepared for.
MAX_ROW_COUNTS: Final = 32

# The row count in a command's status, as SQLAlchemy's asyncpg cursor reads it.
_STATUS_ROWS: Final = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")

# A schema translate map: the schema of each schema name the tables carry
# (None for tables that name none).
Schemas = Mapping[str | None, str | None]

# (parameter keys in the order given, executemany): what Connection.execute
# compiles a statement for (it sorts the keys; they are kept as given here,
# as cheap to hash, and callers build their dicts one way).
_Shape = tuple[tuple[str, ...], bool]
_RowMaker = Callable[[Sequence[Any]], Row[Any]]
# Per positional parameter: the key to look up, its bind name when it differs
# (``construct_params`` tries both), its default, its processor, and whether
# it expands (a sequence of values, each bound with the processor).
_Slot = tuple[str, str | None, Any, Any, bool]


class NotPreparable(Exception):
    """SQLAlchemy does more for this statement than bind and execute it."""


class Expanding(NotPreparable):
    """Prepared only for a number of values of each expanding parameter
    (``PreparedStatement(..., lengths=...)``): those of ``parameters``, as
    (key, bind name, default) in the statement's order."""

    def __init__(self, parameters: tuple[tuple[str, str | None, Any], ...]) -> None:
        super().__init__("expanding parameters: prepared per number of values")
        self.parameters = parameters


class ManyRows(NotPreparable):
    """An executemany with RETURNING, prepared only for a number of rows
    (``PreparedStatement(..., rows=...)``): SQLAlchemy runs it as one
    statement with a VALUES row per parameter set."""

    def __init__(self) -> None:
        super().__init__("executemany with RETURNING: prepared per number of rows")


class PreparedStatement:
    """One statement compiled for one dialect and parameter shape: its SQL,
    its parameters' order and defaults, its processors and row type.

    A statement with expanding parameters raises ``Expanding`` unless
    ``lengths`` gives the number of values of each (in the order of
    ``Expanding.parameters``); it is then prepared for those numbers only.
    Likewise an executemany with RETURNING raises ``ManyRows`` unless
    ``rows`` gives the number of parameter sets it is prepared for.
    """

    def __init__(
        self,
        statement: Executable,
        dialect: Dialect,
        keys: Sequence[str] = (),
        *,
        many: bool = False,
        lengths: Sequence[int] | None = None,
        rows: int | None = None,
        schemas: Schemas | None = None,
    ) -> None:
        if not isinstance(statement, _PREPARABLE):
            raise NotPreparable(f"a {type(statement).__name__} is not prepared")
        compiled = statement.compile(
            dialect=dialect,
            column_keys=sorted(keys),
            for_executemany=many,
            schema_translate_map=schemas,
        )
        assert isinstance(compiled, SQLCompiler)
        _check_preparable(compiled, many)
        # Nothing kept may refer to the statement (as ``compiled`` does): the
        # cache holds statements weakly, with what was prepared for them.
        self.sql: str = compiled.string
        self.many = many
        self._dialect = dialect
        self._dbapi_error: type[Exception] = dialect.loaded_dbapi.Error
        self._parameters = _parameter_slots(compiled)
        self._arity: int | None = None  # values bound, when parameters expand
        # Where each of those values goes in the expanded SQL, when not in
        # that order (numbered placeholders: the expanded values come last).
        self._placed: tuple[int, ...] | None = None
        # ``bind`` when every parameter is given by its key (how callers give
        # them), without expanding ones: one lookup of them all, then the
        # processors of those that have one. The same values as the loop.
        self._take: Callable[[Mapping[str, Any]], Any] | None = None
        self._processors = tuple(
            (position, process)
            for position, (_, _, _, process, _) in enumerate(self._parameters)
            if process is not None
        )
        if self._parameters and not any(expands for *_, expands in self._parameters):
            self._take = itemgetter(*(key for key, *_ in self._parameters))
        if compiled.post_compile_params:
            self.sql, self._arity, self._placed = _expanded(compiled, self._parameters, lengths)
        # An executemany run as one statement (insertmanyvalues): its number
        # of rows, and where each value goes among the rows' values one after
        # the other (None: in that order).
        self._rows: int | None = None
        self._gather: tuple[int, ...] | None = None
        if many and compiled.effective_returning:
            page = statement._execution_options.get(
                "insertmanyvalues_page_size", dialect.insertmanyvalues_page_size
            )
            self.sql, self._gather = _many_values(compiled, rows, page)
            self._rows = rows
        self._executemany = many and self._rows is None
        # ``run_async`` can run it: asyncpg's dialect, one parameter set.
        self.runs_on_asyncpg = dialect.driver == "asyncpg" and not self._executemany
        if schemas is not None:
            self.sql = compiled.preparer._render_schema_translates(self.sql, schemas)
        self._make_row: _RowMaker | None = _row_maker(compiled, dialect)
        # An INSERT whose generated key comes back by RETURNING the dialect
        # adds (PostgreSQL's serial): its row gives the key, not the caller rows.
        self._returns_key = bool(compiled.implicit_returning)
        # as CursorResult.inserted_primary_key allows it
        self._primary_key: Callable[[Any, Mapping[str, Any]], Any] | None = None
        if self._returns_key:
            self._primary_key = compiled._inserted_primary_key_from_returning_getter
        elif compiled.isinsert and not many and not compiled.effective_returning:
            self._primary_key = compiled._inserted_primary_key_from_lastrowid_getter
        self._lastrowid = compiled.postfetch_lastrowid and not many
        # SQLAlchemy takes an UPDATE's or DELETE's rowcount as execute returns
        # (before RETURNING rows are fetched), any other's when asked.
        self._rowcount_first = compiled.isupdate or compiled.isdelete

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's positional values for ``params``, as SQLAlchemy makes them
        (``construct_params``, then the bind processors; an expanding
        parameter's values each in its place). Raises when a required
        parameter is missing, or when an expanding one has another number
        of values than the statement was prepared for."""
        if self._take is not None:
            try:
                taken = self._take(params)
            except KeyError:
                pass  # some parameter by its bind name, or its default: below
            else:
                if len(self._parameters) == 1:
                    taken = (taken,)
                if not self._processors:
                    return taken  # type: ignore[no-any-return]
                processed = list(taken)
                for position, process in self._processors:
                    processed[position] = process(processed[position])
                return tuple(processed)
        values: list[Any] = []
        for key, name, default, process, expands in self._parameters:
            if key in params:
                value = params[key]
            elif name is not None and name in params:
                value = params[name]
            elif default is _REQUIRED:
                raise KeyError(key)
            else:
                value = default
            if expands:
                values.extend(value if process is None else [process(v) for v in value])
            else:
                values.append(value if process is None else process(value))
        if self._arity is not None and len(values) != self._arity:
            raise ValueError("prepared for another number of values")
        if self._placed is not None:
            return tuple(values[n] for n in self._placed)
        return tuple(values)

    def bind_all(self, params: Any) -> Any:
        """``bind`` for one parameter dict or (executemany) each of a list; for
        a statement of many VALUES rows, all of theirs in its order. Raises
        ``ValueError`` for another number of rows than it was prepared for."""
        if not self.many:
            return self.bind(params[0] if isinstance(params, list) else params)
        bound = [self.bind(each) for each in params]
        if self._rows is None:
            return bound
        if len(bound) != self._rows:
            raise ValueError("prepared for another number of rows")
        values = tuple(chain.from_iterable(bound))
        if self._gather is None:
            return values
        return tuple(values[n] for n in self._gather)

    def run(self, connection: Connection, values: Any, params: Any = None) -> PreparedResult:
        """Execute with bound ``values`` on ``connection``'s DB-API connection,
        in whatever transaction it is in; ``params`` (as given to ``bind_all``)
        serve ``inserted_primary_key``."""
        dbapi: Any = connection.connection.dbapi_connection
        make_row = self._make_row
        raw: list[Any] = []
        cursor = dbapi.cursor()
        try:
            if self._executemany:
                cursor.executemany(self.sql, values)
            else:
                cursor.execute(self.sql, values)
            try:
                rowcount = cursor.rowcount if self._rowcount_first else None
                if make_row is not None:
                    raw = cursor.fetchall()
                if rowcount is None:
                    rowcount = cursor.rowcount
                lastrowid = cursor.lastrowid if self._lastrowid else None
            finally:
                cursor.close()
        except self._dbapi_error as exc:
            raise self._failed(connection.invalidate, exc, values, dbapi, cursor) from exc
        except BaseException as exc:
            # Cancelled (a caller's deadline) mid-call: what the driver and the
            # server hold is unknown. A BEGIN sent but not heard back leaves
            # asyncpg inside a transaction SQLAlchemy's adapter does not know,
            # and every later unit of work on that connection a savepoint in
            # it, never committed. SQLAlchemy drops such a connection; so do we.
            if not isinstance(exc, Exception) and not connection.invalidated:
                connection.invalidate(exc)
            raise
        return self._result(rowcount, raw, lastrowid, params)

    async def run_async(
        self, connection: AsyncConnection, values: Any, params: Any = None
    ) -> PreparedResult:
        """``run``, on asyncpg's connection directly (``runs_on_asyncpg``):
        in the adapter's transaction, begun here if none is, as its cursor
        would begin it, and left for SQLAlchemy to commit or roll back."""
        sync = connection.sync_connection
        assert sync is not None and not sync.invalidated
        return await self.run_on_adapter(
            sync.connection.dbapi_connection, sync.invalidate, values, params
        )

    async def run_on_adapter(
        self,
        adapter: Any,
        invalidate: Callable[[BaseException], object],
        values: Any,
        params: Any = None,
    ) -> PreparedResult:
        """``run_async`` on the asyncpg adapter of a pooled connection, however
        it was checked out; ``invalidate`` drops that connection (a disconnect,
        a cancellation)."""
        try:
            async with adapter._execute_mutex:
                if adapter._transaction is None:
                    await adapter._start_transaction()  # nothing in autocommit
                statement, _ = await adapter._prepare(
                    self.sql, adapter._invalidate_schema_cache_asof
                )
                raw = await statement.fetch(*values)
                status = statement.get_statusmsg()
        except Exception as exc:
            try:
                adapter._handle_exception(exc)  # raises the adapter's DB-API error
            except self._dbapi_error as translated:
                raise self._failed(invalidate, translated, values, adapter, None) from translated
            raise
        except BaseException as exc:
            # Cancelled mid-call (see ``run``): drop the connection.
            invalidate(exc)
            raise
        counted = _STATUS_ROWS.match(status or "")
        return self._result(int(counted.group(1)) if counted else -1, raw, None, params)

    def _failed(
        self,
        invalidate: Callable[[BaseException], object],
        exc: Exception,
        values: Any,
        dbapi: Any,
        cursor: Any,
    ) -> sa_exc.DBAPIError:
        """The driver's ``exc`` as SQLAlchemy raises it; a disconnect
        invalidates the connection, as SQLAlchemy's own execution would."""
        error = self.error(exc, values)
        if self._dialect.is_disconnect(exc, dbapi, cursor):  # type: ignore[arg-type]  # a DB-API Error
            error.connection_invalidated = True
            invalidate(error)
        return error

    def _result(self, rowcount: int, raw: list[Any], lastrowid: Any, params: Any) -> PreparedResult:
        make_row = self._make_row
        rows = None if make_row is None else [make_row(each) for each in raw]
        if self._returns_key:
            assert rows is not None and len(rows) == 1  # one row, no conflict clause
            key = partial(self.inserted_primary_key, params, rows[0])
            return PreparedResult(rowcount, SOFT_CLOSED, key)
        inserted = None
        if self._primary_key is not None:
            inserted = partial(self.inserted_primary_key, params, lastrowid)
        return PreparedResult(rowcount, rows, inserted)

    def error(self, exc: Exception, values: Any) -> sa_exc.DBAPIError:
        """The driver's ``exc`` as SQLAlchemy raises it (IntegrityError, OperationalError...);
        for many VALUES rows, as it raises a batch's (its SQL shortened when shown)."""
        wrapped = sa_exc.DBAPIError.instance(
            self.sql if self._rows is None else _long_statement(self.sql),
            values,
            exc,
            self._dbapi_error,
            dialect=self._dialect,
            ismulti=self._executemany,
        )
        assert isinstance(wrapped, sa_exc.DBAPIError)
        return wrapped

    def inserted_primary_key(self, params: Any, generated: Any) -> Any:
        """SQLAlchemy's own (its compiled getter, given lastrowid or the row
        RETURNING gave, and the parameters by bind name, as
        ``construct_params`` makes them)."""
        assert self._primary_key is not None
        single = params[0] if isinstance(params, list) else params
        by_name = {}
        for key, name, default, _, _ in self._parameters:
            if key in single:
                by_name[name or key] = single[key]
            elif name is not None and name in single:
                by_name[name] = single[name]
            elif default is not _REQUIRED:
                by_name[name or key] = default
        return self._primary_key(generated, by_name)


class PreparedStatements:
    """The statements one SQLite connection runs prepared, each compiled once
    per parameter shape, from the second time it is run.

    Statements are held weakly: many are built per call (``select(...).where(
    c == value)``), and compiling those would cost more than SQLAlchemy, whose
    cache finds them by cache key. The first run of a statement object goes
    through SQLAlchemy; a statement object run again was built to be reused.
    """

    def __init__(self, dialect: Dialect, schemas: Schemas | None = None) -> None:
        self.dialect = dialect
        self.schemas = schemas
        self._by_statement: weakref.WeakKeyDictionary[
            Executable, dict[_Shape, PreparedStatement | _Variants | None]
        ] = weakref.WeakKeyDictionary()

    def execute(
        self, connection: Connection, statement: Executable, params: Any
    ) -> PreparedResult | None:
        """``connection.execute(statement, params)`` run prepared, or None when
        it was not run (the caller runs it through SQLAlchemy)."""
        bound = self.bound(statement, params)
        if bound is None:
            return None
        prepared, values = bound
        return prepared.run(connection, values, params)

    def bound(self, statement: Executable, params: Any) -> tuple[PreparedStatement, Any] | None:
        """``statement`` prepared for ``params``, with its values bound; None
        when it is to run through SQLAlchemy (nothing has run)."""
        shape = _shape(params)
        if shape is None:
            return None
        prepared = self._prepared(statement, shape)
        if isinstance(prepared, _Variants):
            prepared = prepared.for_params(statement, params)
        if prepared is None:
            return None
        try:
            return prepared, prepared.bind_all(params)
        except Exception:
            # A missing parameter or a value a bind processor refuses: let
            # SQLAlchemy raise its own error (nothing has run yet).
            return None

    def _prepared(
        self, statement: Executable, shape: _Shape
    ) -> PreparedStatement | _Variants | None:
        try:
            shapes = self._by_statement.get(statement)
        except TypeError:  # not weakly referenceable
            return None
        if shapes is None:
            self._by_statement[statement] = {}  # seen once
            return None
        try:
            return shapes[shape]
        except KeyError:
            pass
        prepared: PreparedStatement | _Variants | None
        try:
            prepared = PreparedStatement(
                statement, self.dialect, shape[0], many=shape[1], schemas=self.schemas
            )
        except Expanding as expanding:
            prepared = _Expansions(self.dialect, self.schemas, shape, expanding.parameters)
        except ManyRows:
            prepared = _RowCounts(self.dialect, self.schemas, shape)
        except (NotPreparable, sa_exc.SQLAlchemyError):
            # Not preparable, or not compilable: SQLAlchemy runs it (and
            # raises its own compile error) every time. Anything else is a
            # bug here, and raises.
            prepared = None
        shapes[shape] = prepared
        return prepared


class _Variants:
    """One statement, for one parameter shape, whose SQL depends on more than
    the shape: prepared per variant of its parameters (a tuple of numbers),
    up to a bound of them.

    Holds nothing of the statement (the caller hands it over each time):
    ``PreparedStatements`` holds statements weakly.
    """

    def __init__(self, dialect: Dialect, schemas: Schemas | None, shape: _Shape) -> None:
        self._dialect = dialect
        self._schemas = schemas
        self._shape = shape
        self._by_variant: dict[tuple[int, ...], PreparedStatement | None] = {}

    def variant(self, params: Any) -> tuple[int, ...] | None:
        """Which variant ``params`` need; None to run them through SQLAlchemy."""
        raise NotImplementedError

    def bound(self) -> int:
        raise NotImplementedError

    def prepare(self, statement: Executable, variant: tuple[int, ...]) -> PreparedStatement:
        raise NotImplementedError

    def for_params(self, statement: Executable, params: Any) -> PreparedStatement | None:
        """``statement`` prepared for ``params``' variant; None to run it
        through SQLAlchemy."""
        variant = self.variant(params)
        if variant is None:
            return None
        try:
            return self._by_variant[variant]
        except KeyError:
            pass
        if len(self._by_variant) >= self.bound():
            return None
        prepared: PreparedStatement | None
        try:
            prepared = self.prepare(statement, variant)
        except (NotPreparable, sa_exc.SQLAlchemyError):
            prepared = None
        self._by_variant[variant] = prepared
        return prepared


class _Expansions(_Variants):
    """A statement with expanding parameters, prepared per number of values
    of each, up to ``MAX_EXPANSIONS`` of them."""

    def __init__(
        self,
        dialect: Dialect,
        schemas: Schemas | None,
        shape: _Shape,
        parameters: tuple[tuple[str, str | None, Any], ...],
    ) -> None:
        super().__init__(dialect, schemas, shape)
        self._parameters = parameters

    def variant(self, params: Any) -> tuple[int, ...] | None:
        single = params[0] if isinstance(params, list) else params
        try:
            return tuple(
                len(_value(single, key, name, default)) for key, name, default in self._parameters
            )
        except (KeyError, TypeError):  # missing, or not a sequence: SQLAlchemy's to judge
            return None

    def bound(self) -> int:
        return MAX_EXPANSIONS

    def prepare(self, statement: Executable, variant: tuple[int, ...]) -> PreparedStatement:
        keys, many = self._shape
        return PreparedStatement(
            statement, self._dialect, keys, many=many, lengths=variant, schemas=self._schemas
        )


class _RowCounts(_Variants):
    """An executemany with RETURNING, prepared per number of rows, up to
    ``MAX_ROW_COUNTS`` of them."""

    def variant(self, params: Any) -> tuple[int, ...]:
        return (len(params),)

    def bound(self) -> int:
        return MAX_ROW_COUNTS

    def prepare(self, statement: Executable, variant: tuple[int, ...]) -> PreparedStatement:
        keys, many = self._shape
        return PreparedStatement(
            statement, self._dialect, keys, many=many, rows=variant[0], schemas=self._schemas
        )


def _value(params: Mapping[str, Any], key: str, name: str | None, default: Any) -> Any:
    """A parameter's value as ``construct_params`` finds it (as ``bind`` does,
    inline there: it runs per value)."""
    if key in params:
        return params[key]
    if name is not None and name in params:
        return params[name]
    if default is _REQUIRED:
        raise KeyError(key)
    return default


def _shape(params: Any) -> _Shape | None:
    """The shape ``Connection.execute`` compiles for; None for no parameters
    (statements built per call, usually) and anything but dicts."""
    if isinstance(params, dict):
        return (tuple(params), False) if params else None
    if isinstance(params, list) and params and isinstance(params[0], dict):
        return tuple(params[0]), len(params) > 1
    return None


def _check_preparable(compiled: SQLCompiler, many: bool) -> None:
    if not compiled.positional:
        raise NotPreparable("named parameters")
    if compiled.literal_execute_params:
        raise NotPreparable("literal-execute parameters")
    if compiled.post_compile_params:
        if many:  # SQLAlchemy refuses it: let it raise its error
            raise NotPreparable("expanding parameters in executemany")
        if compiled.isinsert:  # construct_params' expanded names serve the inserted key
            raise NotPreparable("expanding parameters in an INSERT")
        for bind in compiled.post_compile_params:
            impl = bind.type._unwrapped_dialect_impl(compiled.dialect)
            # Rendered by the values' own shape (a tuple each, or a sequence
            # given to an untyped parameter), not only their number.
            if bind.literal_execute or impl._is_tuple_type or impl._isnull:
                raise NotPreparable("expanding parameters rendered by their values")
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise NotPreparable("Python-side column defaults")
    if compiled.implicit_returning and not _returns_only_its_key(compiled, many):
        raise NotPreparable("implicit RETURNING")
    if compiled.escaped_bind_names or compiled._collected_params:
        raise NotPreparable("escaped bind names or the statement's own params")
    if many and compiled.effective_returning:
        _check_many_values(compiled)
    if compiled._result_columns and (
        not compiled._ordered_columns
        or compiled._textual_ordered_columns
        or compiled._ad_hoc_textual
        or compiled._loose_column_name_matching
    ):
        raise NotPreparable("result columns matched by name")


def _returns_only_its_key(compiled: SQLCompiler, many: bool) -> bool:
    """A one-row INSERT whose only RETURNING is the generated key the dialect
    adds, with one row back whatever the data (no ON CONFLICT)."""
    statement: Any = compiled.compile_state.statement if compiled.compile_state else None
    return (
        compiled.isinsert
        and not many
        and statement is not None
        and not statement._returning
        and not statement._supplemental_returning
        and statement._post_values_clause is None
    )


def _parameter_slots(compiled: SQLCompiler) -> tuple[_Slot, ...]:
    """Each positional parameter's slot (``_Slot``), in the compiled order."""
    processors = compiled._bind_processors
    expanding = compiled.post_compile_params
    slots = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise NotPreparable("a callable parameter value")
        default = _REQUIRED if bind.required else bind.value
        renamed = name if name != bind.key else None
        slots.append((bind.key, renamed, default, processors.get(name), bind in expanding))
    return tuple(slots)


def _expanded(
    compiled: SQLCompiler, slots: tuple[_Slot, ...], lengths: Sequence[int] | None
) -> tuple[str, int, tuple[int, ...] | None]:
    """The SQL SQLAlchemy runs for ``lengths`` values of each expanding
    parameter (its own expansion, as an execution makes it), the number of
    values ``bind`` makes for it (each parameter's in the compiled order, an
    expanding one's in its place), and where SQLAlchemy puts each of them:
    None for that same order. ``Expanding`` without ``lengths``."""
    expanding: dict[str, tuple[str, str | None, Any]] = {}
    for name, (key, renamed, default, _, expands) in zip(
        compiled.positiontup or (), slots, strict=True
    ):
        if expands:
            expanding.setdefault(name, (key, renamed, default))
    if lengths is None:
        raise Expanding(tuple(expanding.values()))
    if len(lengths) != len(expanding):
        raise ValueError(f"{len(expanding)} expanding parameters, {len(lengths)} lengths")
    count = dict(zip(expanding, lengths, strict=True))
    # Each value bound, as a marker of its place among ``bind``'s values;
    # SQLAlchemy's expansion of the markers says where it puts each. For a
    # typed, non-tuple parameter only their number shapes the SQL
    # (``_check_preparable``).
    markers: dict[str, Any] = {}
    place = 0
    for name in compiled.positiontup or ():
        n = count.get(name)
        if n is None:
            markers.setdefault(name, _Marker(place))
        else:
            markers.setdefault(name, [_Marker(place + i) for i in range(n)])
        place += 1 if n is None else n
    state = compiled._process_parameters_for_postcompile(markers)
    values = [state.parameters[name] for name in state.positiontup or ()]
    if not all(isinstance(value, _Marker) for value in values):
        raise NotPreparable("an expansion other than one value a placeholder")
    placed = tuple(value.place for value in values)
    return state.statement, place, None if placed == tuple(range(place)) else placed


class _Marker:
    """A value's place among ``bind``'s values."""

    __slots__ = ("place",)

    def __init__(self, place: int) -> None:
        self.place = place


def _check_many_values(compiled: SQLCompiler) -> None:
    """An executemany with RETURNING is prepared where SQLAlchemy runs it as
    plain batches of VALUES rows whose rows it returns as they come."""
    imv = compiled._insertmanyvalues
    dialect = compiled.dialect
    if not compiled.isinsert or imv is None or not dialect.supports_multivalues_insert:
        raise NotPreparable("executemany with RETURNING other than insertmanyvalues")
    if imv.sort_by_parameter_order or imv.num_sentinel_columns or imv.embed_values_counter:
        raise NotPreparable("insertmanyvalues sorting its rows by parameter order")
    if imv.has_upsert_bound_parameters or (
        imv.is_default_expr and not dialect.supports_default_metavalue
    ):
        raise NotPreparable("insertmanyvalues a row at a time")


def _many_values(
    compiled: SQLCompiler, rows: int | None, page: int
) -> tuple[str, tuple[int, ...] | None]:
    """The SQL SQLAlchemy runs for ``rows`` parameter sets of an insertmanyvalues
    executemany (its own batching, given the rows' values numbered one after
    the other), and where those values go in it: None for that same order.
    ``ManyRows`` without ``rows``; NotPreparable past one batch."""
    if rows is None:
        raise ManyRows
    width = len(compiled.positiontup or ())
    numbered = [tuple(range(row * width, (row + 1) * width)) for row in range(rows)]
    batches = list(
        compiled._deliver_insertmanyvalues_batches(
            compiled.string, numbered, [{} for _ in numbered], None, page, False, None
        )
    )
    if len(batches) != 1 or batches[0].is_downgraded:
        raise NotPreparable("insertmanyvalues in more batches than one")
    batch = batches[0]
    gather = tuple(batch.replaced_parameters)
    return batch.replaced_statement, None if gather == tuple(range(rows * width)) else gather


def _row_maker(compiled: SQLCompiler, dialect: Dialect) -> _RowMaker | None:
    """Rows of the statement's columns as SQLAlchemy's ``Row``, keyed by name
    and by column object like a ``CursorResult``'s; None when it returns none."""
    columns = compiled._result_columns
    if not columns:
        return None
    keys = [column.keyname for column in columns]
    extra = [column.objects for column in columns]
    every_key = [key for key, objects in zip(keys, extra, strict=True) for key in {key, *objects}]
    if len(every_key) != len(set(every_key)):
        raise NotPreparable("ambiguous column names")
    processors = [column.type._cached_result_processor(dialect, None) for column in columns]
    metadata = SimpleResultMetaData(keys, extra)
    effective = processors if any(p is not None for p in processors) else None
    return partial(Row, metadata, effective, metadata._key_to_index)
