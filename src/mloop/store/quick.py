"""The stdlib `sqlite3` beside SQLAlchemy, for the few statements of a short CLI process:
`mloop data add` of a folder then never imports SQLAlchemy (a sixth of a second, a quarter of the
CPU the whole add takes).

Only the plain case: a SQLite store file already at the head schema revision, in a process that has
not loaded SQLAlchemy anyway (then its pooled engine is the cheaper path). Otherwise `connect`
returns None and the caller uses its repository, which stays the source of truth; tests pin both
paths to the same rows. The connection is set up as `db._make_engine` sets up SQLite's.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from mloop.errors import ServiceUnavailable

T = TypeVar("T")


def connect(uri: str) -> sqlite3.Connection | None:
    """A connection to the SQLite store at `uri`, or None when this path does not apply."""
    if "sqlalchemy" in sys.modules:
        return None
    return open_sqlite(uri)


def open_sqlite(uri: str) -> sqlite3.Connection | None:
    """A connection to the SQLite store file at `uri` if it exists at the head revision, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):]
    if not path or path == ":memory:" or "?" in path:
        return None
    from urllib.parse import quote

    from mloop.store.migrate import head

    try:  # mode=rw: a missing file is never created here (the regular path creates and migrates it)
        conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=30, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        for pragma in ("busy_timeout=30000", "synchronous=NORMAL", "foreign_keys=ON", "case_sensitive_like=ON"):
            conn.execute(f"PRAGMA {pragma}")
        revision = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        if revision == [head()]:
            conn.row_factory = sqlite3.Row
            return conn
    except sqlite3.Error:
        pass
    conn.close()
    return None


def one_row(conn: sqlite3.Connection, sql: str, *params: Any) -> dict | None:
    """The first row of a query as a dict, or None."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else dict(row)


def transact(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn(conn)` in one write transaction (`BEGIN IMMEDIATE`: it holds the write lock, as the
    regular path's write engine does)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise ServiceUnavailable(f"metadata store is locked by other writers: {exc}; retry") from exc
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return result
