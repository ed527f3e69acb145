"""Real databases for the tests: a SQLite file in a temp dir, or a fresh PostgreSQL schema.

PostgreSQL is the machine's server (127.0.0.1:5432, trust auth, database
`test`); CALFLINE_TEST_POSTGRES_URL points elsewhere. Each test gets its own
schema, dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# Read at import, before the autouse fixture clears CALFLINE_* variables.
POSTGRES_URL = (os.environ.get("CALFLINE_TEST_POSTGRES_URL")
                or "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = "calfline_test_"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Create a uniquely named schema; yield a URL whose search_path is that schema."""
    name = f"{SCHEMA_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def sqlite_url(directory: Any) -> str:
    """Return the URL of a SQLite file in `directory`."""
    return f"sqlite:///{directory}/calfline.sqlite3"
