"""Statements compiled once and run on SQLite's driver connection.

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

Where SQLAlchemy does more than bind and execute, the statement is not
prepared (``NotPreparable``, decided once per statement and parameter shape)
and runs through SQLAlchemy: expanding or literal-execute parameters,
Python-side column defaults, implicit RETURNING, executemany with RETURNING
(one multi-row statement in SQLAlchemy), and any statement but a Core
SELECT, INSERT, UPDATE or DELETE.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final

from sqlalchemy import Connection, Delete, Dialect, Insert, Row, Select, Update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.result import SimpleResultMetaData
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from ec_recommend.platform.storage.results import PreparedResult

_PREPARABLE: Final = (Select, Insert, Update, Delete)
_REQUIRED: Final = object()  # a parameter with no value of its own

# (parameter keys in the order given, executemany): what Connection.execute
# compiles a statement for (it sorts the keys; they are kept as given here,
# as cheap to hash, and callers build their dicts one way).
_Shape = tuple[tuple[str, ...], bool]
_RowMaker = Callable[[Sequence[Any]], Row[Any]]


class NotPreparable(Exception):
    """SQLAlchemy does more for this statement than bind and execute it."""


class PreparedStatement:
    """One statement compiled for one dialect and parameter shape: its SQL,
    its parameters' order and defaults, its processors and row type."""

    def __init__(
        self,
        statement: Executable,
        dialect: Dialect,
        keys: Sequence[str] = (),
        *,
        many: bool = False,
    ) -> None:
        if not isinstance(statement, _PREPARABLE):
            raise NotPreparable(f"a {type(statement).__name__} is not prepared")
        compiled = statement.compile(
            dialect=dialect, column_keys=sorted(keys), for_executemany=many
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
        self._make_row: _RowMaker | None = _row_maker(compiled, dialect)
        # as CursorResult.inserted_primary_key allows it
        self._primary_key: Callable[[int | None, Mapping[str, Any]], Any] | None = None
        if compiled.isinsert and not many and not compiled.effective_returning:
            self._primary_key = compiled._inserted_primary_key_from_lastrowid_getter
        self._lastrowid = compiled.postfetch_lastrowid and not many
        # SQLAlchemy takes an UPDATE's or DELETE's rowcount as execute returns
        # (before RETURNING rows are fetched), any other's when asked.
        self._rowcount_first = compiled.isupdate or compiled.isdelete

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The driver's positional values for ``params``, as SQLAlchemy makes them
        (``construct_params``, then the bind processors). Raises when a
        required parameter is missing."""
        values = []
        for key, name, default, process in self._parameters:
            if key in params:
                value = params[key]
            elif name is not None and name in params:
                value = params[name]
            elif default is _REQUIRED:
                raise KeyError(key)
            else:
                value = default
            values.append(value if process is None else process(value))
        return tuple(values)

    def bind_all(self, params: Any) -> Any:
        """``bind`` for one parameter dict or (executemany) each of a list."""
        if self.many:
            return [self.bind(each) for each in params]
        return self.bind(params[0] if isinstance(params, list) else params)

    def row(self, values: Sequence[Any]) -> Row[Any]:
        """A row as SQLAlchemy gives it for the driver's ``values``."""
        assert self._make_row is not None
        return self._make_row(values)

    def run(self, connection: Connection, values: Any, params: Any = None) -> PreparedResult:
        """Execute with bound ``values`` on ``connection``'s driver connection,
        in whatever transaction it is in; ``params`` (as given to ``bind_all``)
        serve ``inserted_primary_key``."""
        driver: Any = connection.connection.driver_connection
        make_row = self._make_row
        raw: list[Any] = []
        try:
            if self.many:
                cursor = driver.executemany(self.sql, values)
            else:
                cursor = driver.execute(self.sql, values)
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
            raise self.error(exc, values) from exc
        rows = None if make_row is None else [make_row(each) for each in raw]
        inserted = None
        if self._primary_key is not None:
            inserted = partial(self.inserted_primary_key, params, lastrowid)
        return PreparedResult(rowcount, rows, inserted)

    def error(self, exc: Exception, values: Any) -> sa_exc.DBAPIError:
        """The driver's ``exc`` as SQLAlchemy raises it (IntegrityError, OperationalError...)."""
        wrapped = sa_exc.DBAPIError.instance(
            self.sql,
            values,
            exc,
            self._dbapi_error,
            dialect=self._dialect,
            ismulti=self.many,
        )
        assert isinstance(wrapped, sa_exc.DBAPIError)
        return wrapped

    def inserted_primary_key(self, params: Any, lastrowid: int | None) -> Any:
        """SQLAlchemy's own (its compiled getter, given lastrowid and the
        parameters by bind name, as ``construct_params`` makes them)."""
        assert self._primary_key is not None
        single = params[0] if isinstance(params, list) else params
        by_name = {}
        for key, name, default, _ in self._parameters:
            if key in single:
                by_name[name or key] = single[key]
            elif name is not None and name in single:
                by_name[name] = single[name]
            elif default is not _REQUIRED:
                by_name[name or key] = default
        return self._primary_key(lastrowid, by_name)


class PreparedStatements:
    """The statements one SQLite connection runs prepared, each compiled once
    per parameter shape, from the second time it is run.

    Statements are held weakly: many are built per call (``select(...).where(
    c == value)``), and compiling those would cost more than SQLAlchemy, whose
    cache finds them by cache key. The first run of a statement object goes
    through SQLAlchemy; a statement object run again was built to be reused.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._by_statement: weakref.WeakKeyDictionary[
            Executable, dict[_Shape, PreparedStatement | None]
        ] = weakref.WeakKeyDictionary()

    def execute(
        self, connection: Connection, statement: Executable, params: Any
    ) -> PreparedResult | None:
        """``connection.execute(statement, params)`` run prepared, or None when
        it was not run (the caller runs it through SQLAlchemy)."""
        shape = _shape(params)
        if shape is None:
            return None
        prepared = self._prepared(statement, shape)
        if prepared is None:
            return None
        try:
            values = prepared.bind_all(params)
        except Exception:
            # A missing parameter or a value a bind processor refuses: let
            # SQLAlchemy raise its own error (nothing has run yet).
            return None
        return prepared.run(connection, values, params)

    def _prepared(self, statement: Executable, shape: _Shape) -> PreparedStatement | None:
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
        prepared: PreparedStatement | None
        try:
            prepared = PreparedStatement(statement, self.dialect, shape[0], many=shape[1])
        except (NotPreparable, sa_exc.SQLAlchemyError):
            # Not preparable, or not compilable: SQLAlchemy runs it (and
            # raises its own compile error) every time. Anything else is a
            # bug here, and raises.
            prepared = None
        shapes[shape] = prepared
        return prepared


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
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise NotPreparable("expanding or literal-execute parameters")
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise NotPreparable("Python-side column defaults")
    if compiled.implicit_returning:
        raise NotPreparable("implicit RETURNING")
    if compiled.escaped_bind_names or compiled._collected_params:
        raise NotPreparable("escaped bind names or the statement's own params")
    if many and compiled.effective_returning:
        raise NotPreparable("executemany with RETURNING")
    if compiled.schema_translate_map:
        raise NotPreparable("a schema translate map")
    if compiled._result_columns and (
        not compiled._ordered_columns
        or compiled._textual_ordered_columns
        or compiled._ad_hoc_textual
        or compiled._loose_column_name_matching
    ):
        raise NotPreparable("result columns matched by name")


def _parameter_slots(
    compiled: SQLCompiler,
) -> tuple[tuple[str, str | None, Any, Any], ...]:
    """Per positional parameter: the key to look up, its bind name when it
    differs (``construct_params`` tries both), its default, its processor."""
    processors = compiled._bind_processors
    slots = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        if bind.callable is not None:
            raise NotPreparable("a callable parameter value")
        default = _REQUIRED if bind.required else bind.value
        slots.append((bind.key, name if name != bind.key else None, default, processors.get(name)))
    return tuple(slots)


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
