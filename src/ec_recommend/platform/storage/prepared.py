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

An expanding parameter (``IN``) is rendered by SQLAlchemy per execution,
from the number of values it is given (``IN (?, ?, ?)``): such a statement
is prepared once per number of values of each (``Expanding``), its SQL from
SQLAlchemy's own expansion, each value bound with the parameter's processor
as SQLAlchemy binds it, for up to ``MAX_EXPANSIONS`` lengths a statement
(more run through SQLAlchemy).

Where SQLAlchemy does more than bind and execute, the statement is not
prepared (``NotPreparable``, decided once per statement and parameter shape)
and runs through SQLAlchemy: literal-execute parameters, expanding ones
whose rendering depends on the values (tuples, untyped) or in an INSERT or
executemany, Python-side column defaults, implicit RETURNING, executemany
with RETURNING (one multi-row statement in SQLAlchemy), and any statement
but a Core SELECT, INSERT, UPDATE or DELETE.
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

# Lengths of an expanding statement's values prepared, at most: a compile
# each (~0.2 ms); past them the statement runs through SQLAlchemy, whose
# compiled form serves every length, rather than compiling again and again.
MAX_EXPANSIONS: Final = 32

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


class PreparedStatement:
    """One statement compiled for one dialect and parameter shape: its SQL,
    its parameters' order and defaults, its processors and row type.

    A statement with expanding parameters raises ``Expanding`` unless
    ``lengths`` gives the number of values of each (in the order of
    ``Expanding.parameters``); it is then prepared for those numbers only.
    """

    def __init__(
        self,
        statement: Executable,
        dialect: Dialect,
        keys: Sequence[str] = (),
        *,
        many: bool = False,
        lengths: Sequence[int] | None = None,
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
        self._arity: int | None = None  # values bound, when parameters expand
        if compiled.post_compile_params:
            self.sql, self._arity = _expanded(compiled, self._parameters, lengths)
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
        (``construct_params``, then the bind processors; an expanding
        parameter's values each in its place). Raises when a required
        parameter is missing, or when an expanding one has another number
        of values than the statement was prepared for."""
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
        return tuple(values)

    def bind_all(self, params: Any) -> Any:
        """``bind`` for one parameter dict or (executemany) each of a list."""
        if self.many:
            return [self.bind(each) for each in params]
        return self.bind(params[0] if isinstance(params, list) else params)

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
        for key, name, default, _, _ in self._parameters:
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
            Executable, dict[_Shape, PreparedStatement | _Expansions | None]
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
        if isinstance(prepared, _Expansions):
            prepared = prepared.for_values(statement, params)
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
    ) -> PreparedStatement | _Expansions | None:
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
        prepared: PreparedStatement | _Expansions | None
        try:
            prepared = PreparedStatement(statement, self.dialect, shape[0], many=shape[1])
        except Expanding as expanding:
            prepared = _Expansions(self.dialect, shape, expanding.parameters)
        except (NotPreparable, sa_exc.SQLAlchemyError):
            # Not preparable, or not compilable: SQLAlchemy runs it (and
            # raises its own compile error) every time. Anything else is a
            # bug here, and raises.
            prepared = None
        shapes[shape] = prepared
        return prepared


class _Expansions:
    """One statement with expanding parameters, for one parameter shape:
    prepared per number of values of each, up to ``MAX_EXPANSIONS`` of them.

    Holds nothing of the statement (the caller hands it over each time):
    ``PreparedStatements`` holds statements weakly.
    """

    def __init__(
        self, dialect: Dialect, shape: _Shape, parameters: tuple[tuple[str, str | None, Any], ...]
    ) -> None:
        self._dialect = dialect
        self._shape = shape
        self._parameters = parameters
        self._by_lengths: dict[tuple[int, ...], PreparedStatement | None] = {}

    def for_values(self, statement: Executable, params: Any) -> PreparedStatement | None:
        """``statement`` prepared for as many values as ``params`` give each
        expanding parameter; None to run it through SQLAlchemy."""
        single = params[0] if isinstance(params, list) else params
        try:
            lengths = tuple(
                len(_value(single, key, name, default)) for key, name, default in self._parameters
            )
        except (KeyError, TypeError):  # missing, or not a sequence: SQLAlchemy's to judge
            return None
        try:
            return self._by_lengths[lengths]
        except KeyError:
            pass
        if len(self._by_lengths) >= MAX_EXPANSIONS:
            return None
        prepared: PreparedStatement | None
        keys, many = self._shape
        try:
            prepared = PreparedStatement(statement, self._dialect, keys, many=many, lengths=lengths)
        except (NotPreparable, sa_exc.SQLAlchemyError):
            prepared = None
        self._by_lengths[lengths] = prepared
        return prepared


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
) -> tuple[str, int]:
    """The SQL SQLAlchemy runs for ``lengths`` values of each expanding
    parameter (its own expansion, as an execution makes it), and the number
    of values it binds; ``Expanding`` without ``lengths``."""
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
    # Placeholders: for a typed, non-tuple parameter only their number
    # shapes the SQL (``_check_preparable``).
    state = compiled._process_parameters_for_postcompile(
        {name: [None] * n for name, n in count.items()}
    )
    arity = sum(count.get(name, 1) for name in compiled.positiontup or ())
    if len(state.positiontup or ()) != arity:  # an expansion this module does not follow
        raise NotPreparable("an expansion other than one value a placeholder")
    return state.statement, arity


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
