"""Schema migrations on open: one row read on the fast path, Alembic only when behind head.

The head revision is read from the migration files themselves (a regex, no Alembic or SQLAlchemy
import: the one-row read paths of store/quick_read.py use it too), so opening an up-to-date store
costs one `SELECT version_num FROM alembic_version`. When it is behind,
the upgrade runs under a lock (`BEGIN EXCLUSIVE` on SQLite, `pg_advisory_xact_lock` on PostgreSQL)
and re-checks the revision inside it, so several processes opening a fresh store do not race.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.errors import MloopError

if TYPE_CHECKING:
    from mloop.store.db import Store

MIGRATIONS = Path(__file__).parent / "migrations"
# `revision = "0001"` / `revision: str = "0001"`; `down_revision` may be None, a string or a tuple.
_REV = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")
_ADVISORY_KEY = 0x6D6C6F6F70  # "mloop"


@lru_cache(maxsize=1)
def _graph() -> tuple[frozenset[str], frozenset[str]]:
    revisions, downs = set(), set()
    for file in (MIGRATIONS / "versions").glob("*.py"):
        source = file.read_text()
        rev, down = _REV.search(source), _DOWN.search(source)
        if rev:
            revisions.add(rev.group(1))
        if down:
            downs.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions), frozenset(downs)


def heads() -> tuple[str, ...]:
    """Revisions no other migration builds on (there must be exactly one)."""
    revisions, downs = _graph()
    return tuple(sorted(revisions - downs))


def head() -> str:
    """The single head revision (MloopError naming them when the migrations have several)."""
    found = heads()
    if len(found) != 1:
        raise MloopError(
            f"the store migrations have {len(found)} heads ({', '.join(found) or 'none'}); point each "
            "migration's down_revision at the previous one so there is exactly one"
        )
    return found[0]


def ensure_schema(store: Store) -> None:
    """Bring the store to head if it is not there already (the fast path reads one row)."""
    target = head()
    with store._read.connect() as conn:
        current = _read_revision(conn)
    if current == target:
        return
    _check_known(store, current)
    _upgrade_locked(store, target)


def _check_known(store: Store, current: str | None) -> None:
    from mloop.store.db import redact

    if current is not None and current not in _graph()[0]:
        raise MloopError(
            f"metadata store {redact(store.uri)} is at schema revision {current!r}, which this mloop "
            "does not know (it was migrated by a newer mloop); upgrade mloop to use it"
        )


def _read_revision(conn) -> str | None:  # noqa: ANN001
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        conn.rollback()
        return None


def _upgrade_locked(store: Store, target: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from mloop.store.db import _make_engine

    exclusive = _make_engine(store.uri, store.dialect, begin="BEGIN EXCLUSIVE")
    try:
        with exclusive.connect() as conn, conn.begin():
            if store.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_KEY})
            current = _read_revision_in_txn(conn)
            if current != target:
                _check_known(store, current)
                cfg = Config()
                cfg.set_main_option("script_location", str(MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
    finally:
        exclusive.dispose()


def _read_revision_in_txn(conn) -> str | None:  # noqa: ANN001
    from sqlalchemy import text

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
