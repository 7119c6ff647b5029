"""Schema migrations on open: one row read on the fast path, Alembic only when behind head.

The head revision is read from the migration files themselves (a regex, no Alembic import), so
opening an up-to-date store costs one `SELECT version_num FROM alembic_version`. When it is behind,
the upgrade runs under a lock (`BEGIN EXCLUSIVE` on SQLite, `pg_advisory_xact_lock` on PostgreSQL)
and re-checks the revision inside it, so several processes opening a fresh store do not race.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from mloop.store.db import Store

MIGRATIONS = Path(__file__).parent / "migrations"
_REV = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*=\s*(?:['\"]([^'\"]+)['\"]|None)", re.M)
_ADVISORY_KEY = 0x6D6C6F6F70  # "mloop"


@lru_cache(maxsize=1)
def heads() -> tuple[str, ...]:
    """Revisions no other migration builds on (there must be exactly one)."""
    revisions, downs = set(), set()
    for file in (MIGRATIONS / "versions").glob("*.py"):
        source = file.read_text()
        rev, down = _REV.search(source), _DOWN.search(source)
        if rev:
            revisions.add(rev.group(1))
        if down and down.group(1):
            downs.add(down.group(1))
    return tuple(sorted(revisions - downs))


def ensure_schema(store: Store) -> None:
    """Bring the store to head if it is not there already."""
    (head,) = heads()
    with store._read.connect() as conn:
        if _read_revision(conn) == head:
            return
    _upgrade_locked(store, head)


def _read_revision(conn) -> str | None:  # noqa: ANN001
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        conn.rollback()
        return None


def _upgrade_locked(store: Store, head: str) -> None:
    from alembic import command
    from alembic.config import Config

    from mloop.store.db import _make_engine

    exclusive = _make_engine(store.uri, store.dialect, begin="BEGIN EXCLUSIVE")
    try:
        with exclusive.connect() as conn, conn.begin():
            if store.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
            if _read_revision_in_txn(conn) != head:
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    finally:
        exclusive.dispose()


def _read_revision_in_txn(conn) -> str | None:  # noqa: ANN001
    exists = conn.execute(
        text(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            if conn.dialect.name == "sqlite"
            else "SELECT to_regclass('alembic_version')::text"
        )
    ).scalar()
    if not exists:
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
