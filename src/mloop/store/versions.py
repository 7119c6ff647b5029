"""Per-parent version numbers (model versions, dataset versions, suite versions, ...).

`(parent, version)` must be unique in every table that uses this. The next number is read and the
row inserted in one write transaction: on SQLite that transaction holds the write lock from its
start (`BEGIN IMMEDIATE`), on PostgreSQL it first takes a transaction-scoped advisory lock on
`(table, parent)`, so concurrent writers queue instead of colliding. A unique violation (a writer
that does not take the lock) still retries with the next number.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Column, Table, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from mloop.store.db import Store


def next_version(conn: Connection, version_col: Column, parent_col: Column, parent: object) -> int:
    """The next free version under `parent`, read inside the caller's transaction."""
    current = conn.execute(select(func.max(version_col)).where(parent_col == parent)).scalar()
    return int(current or 0) + 1


def lock_parent(conn: Connection, table: Table, parent: object) -> None:
    """Serialise version allocation for `(table, parent)` until the transaction ends (PostgreSQL;
    on SQLite the write transaction already holds the database's write lock)."""
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"{table.name}\0{parent}".encode()) - (1 << 31)
        conn.execute(text("SELECT pg_advisory_xact_lock(CAST(:ns AS integer), CAST(:key AS integer))"), {"ns": 0x6D6C, "key": key})


def insert_versioned(
    store: Store,
    table: Table,
    parent_col: str,
    parent: object,
    write: Callable[[Connection, int], object],
    *,
    version_col: str = "version",
    attempts: int = 20,
) -> object:
    """Allocate the next version of `parent` in `table` and call `write(conn, version)` to insert it.

    Everything `write` does commits in the same transaction as the allocation. Returns what
    `write` returns.

    >>> insert_versioned(store, model_versions, "name", "churn",
    ...                  lambda conn, v: conn.execute(model_versions.insert(), {"name": "churn", "version": v}))
    ... # doctest: +SKIP
    """

    def attempt(conn: Connection) -> object:
        lock_parent(conn, table, parent)
        return write(conn, next_version(conn, table.c[version_col], table.c[parent_col], parent))

    delay = 0.002
    for n in range(attempts):
        try:
            return store.transact(attempt)
        except IntegrityError:
            if n == attempts - 1:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)
    raise AssertionError("unreachable")
