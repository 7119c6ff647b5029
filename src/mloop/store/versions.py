"""Per-parent version numbers (model versions, dataset versions, suite versions, ...).

`(parent, version)` is unique in every table that uses this; the next number is read and the row
inserted in one transaction, and a unique violation (two writers picked the same number on
PostgreSQL) retries with the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Column, Table, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from mloop.store.db import Store


def next_version(conn: Connection, version_col: Column, parent_col: Column, parent: object) -> int:
    """The next free version under `parent`, read inside the caller's transaction."""
    current = conn.execute(select(func.max(version_col)).where(parent_col == parent)).scalar()
    return int(current or 0) + 1


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
    """
    for attempt in range(attempts):
        try:
            return store.transact(
                lambda conn: write(conn, next_version(conn, table.c[version_col], table.c[parent_col], parent))
            )
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
