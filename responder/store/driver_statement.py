"""One SQL statement compiled once and run on the DBAPI driver's own cursor.

    DriverStatement(statement, dialect, keys).rows(connection, params) -> rows

The webhook's store statements (responder/store/statements.py: on SQLite the
state read and the record's three, on PostgreSQL the state read and the
one-statement record) go through this instead of Connection.execute(): same
SQL, same parameter and result conversions, same exceptions, less work per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Select
from sqlalchemy.exc import DBAPIError, StatementError


class DriverStatement:
    """A statement compiled once for its dialect and run on the driver's own cursor.

    SQLAlchemy's execute() costs about 15 us a statement on SQLite (its caches,
    events, parameter and result processing) and well over 100 us of CPU for
    PostgreSQL's one-statement record (psycopg's own work aside), on top of the
    database's work. This keeps SQLAlchemy's SQL text and its bind processors
    (the store's UTC datetimes), worked out here once; the transaction, its
    events (the guard's) and the connection stay SQLAlchemy's. sqlite3 takes
    the parameters by position (qmark), psycopg by name (pyformat).
    """

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.escaped_bind_names:
            raise ValueError(f"{dialect.name}: DriverStatement needs plain parameter names")
        self.sql = compiled.string
        self.dialect = dialect
        self.positional = compiled.positiontup is not None
        # By position: the placeholders in order; by name: each rendered name once.
        binds = [(name, compiled.binds[name]) for name in compiled.positiontup] \
            if self.positional else list({name: bind for bind, name
                                          in compiled.bind_names.items()}.items())
        self.plan: list[tuple[str, Any, Any]] = []  # (name, processor, value if not given)
        for name, bind in binds:
            if name not in keys and bind.required:
                raise ValueError(f"{name}: a parameter the caller does not give")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.plan.append((name, processor, None if name in keys else bind.effective_value))
        # A SELECT's columns come back as SQLAlchemy gives them (booleans, aware datetimes).
        columns = statement.selected_columns if isinstance(statement, Select) else ()
        self.results = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                        for column in columns]
        if not any(self.results):
            self.results = []
        # Whether the statement left rows to fetch. psycopg's `description` builds a
        # Column object per field on every call (about a quarter of the CPU psycopg
        # spends on the webhook's two statements); its `rownumber` is None exactly
        # when there are none, at no cost. sqlite3's `description` is a plain tuple.
        self.has_rows = _rownumber_set if dialect.driver == "psycopg" else _description_set

    def parameters(self, params: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
        """The driver's parameters: converted as SQLAlchemy would, by position or name."""
        values = []
        for name, processor, fixed in self.plan:
            value = params[name] if name in params else fixed
            values.append(processor(value) if processor is not None else value)
        if self.positional:
            return values
        return {name: value for (name, *_), value in zip(self.plan, values, strict=True)}

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run the statement in the connection's transaction (or autocommit); its rows."""
        values = self.parameters(params)
        raw = connection.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.execute(self.sql, values)
            rows = cursor.fetchall() if self.has_rows(cursor) else []
        except self.dialect.loaded_dbapi.Error as error:
            raise self._failed(connection, error, cursor, values) from error
        finally:
            cursor.close()
        if not self.results:
            return rows
        return [tuple(value if process is None else process(value)
                      for process, value in zip(self.results, row, strict=True))
                for row in rows]

    def _failed(self, connection: Connection, error: Any, cursor: Any,
                values: Any) -> StatementError:
        """The driver's error as SQLAlchemy raises it (the guard sorts by its class); a
        connection that is gone leaves the pool, as SQLAlchemy's execute() would make it."""
        raw = connection.connection.driver_connection
        gone = bool(self.dialect.is_disconnect(error, raw, cursor))
        if gone:
            connection.invalidate(error)
        return DBAPIError.instance(self.sql, values, error, self.dialect.loaded_dbapi.Error,
                                   connection_invalidated=gone, dialect=self.dialect)


def _rownumber_set(cursor: Any) -> bool:
    """psycopg: a result with rows to fetch."""
    return cursor.rownumber is not None


def _description_set(cursor: Any) -> bool:
    """DB-API: a result with columns (sqlite3)."""
    return cursor.description is not None
