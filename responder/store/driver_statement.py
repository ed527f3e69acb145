"""One SQL statement compiled once and run on the DBAPI driver's own cursor (SQLite).

    DriverStatement(statement, dialect, keys).rows(connection, params) -> rows

The webhook's store statements on SQLite (responder/store/statements.py) go
through this instead of Connection.execute(): same SQL, same parameter and
result conversions, same exceptions, less work per call.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Select
from sqlalchemy.exc import DBAPIError


class DriverStatement:
    """A statement compiled once for SQLite and run on the driver's own cursor.

    SQLAlchemy's execute() costs about 15 us a statement (its caches, events,
    parameter and result processing) on top of SQLite's own work, and the
    webhook's record runs three under the writers' queue, which every other
    worker waits on. This keeps SQLAlchemy's SQL text and its bind processors
    (the store's UTC datetimes as SQLite's text), worked out here once; the
    transaction, its events (the guard's) and the connection stay SQLAlchemy's.
    """

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if compiled.positiontup is None:  # sqlite3's qmark style: parameters by position
            raise ValueError(f"{dialect.name}: DriverStatement needs positional parameters")
        self.sql = compiled.string
        self.plan: list[tuple[str, Any, Any]] = []  # (name, processor, value if not given)
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
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

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run the statement in the connection's transaction; return its rows."""
        values = []
        for name, processor, fixed in self.plan:
            value = params[name] if name in params else fixed
            values.append(processor(value) if processor is not None else value)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            rows = cursor.execute(self.sql, values).fetchall()
        except sqlite3.Error as error:  # as SQLAlchemy would raise it: the guard sorts by it
            raise DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error
        finally:
            cursor.close()
        if not self.results:
            return rows
        return [tuple(value if process is None else process(value)
                      for process, value in zip(self.results, row, strict=True))
                for row in rows]
