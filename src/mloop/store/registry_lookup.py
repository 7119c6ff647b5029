"""Read-only lookup of one registered model version without SQLAlchemy: the stdlib `sqlite3` on a
SQLite store, `psycopg` on PostgreSQL. A fresh process that loads `churn@champion` then never
imports SQLAlchemy or Alembic (a quarter of a second of imports).

`find_version` answers only the plain case: the store exists at the head schema revision and the
model and the alias or version are live. Otherwise (and on any driver error) it returns None and
the caller asks `ModelRepo`, which stays the one source of answers and of NotFound messages. The
row has the shape `ModelRepo.version` returns: every `model_versions` column, the JSON columns
decoded, plus `tags` and `aliases`.
"""

from __future__ import annotations

import json
from typing import Any

JSON_COLS = ("signature", "manifest", "metrics", "datasets")

_VERSION = "SELECT v.* FROM model_versions v JOIN registered_models m ON m.name = v.name WHERE v.name = ? " \
           "AND m.lifecycle_stage = 'active' "
_BY_NUMBER = _VERSION + "AND v.version = ? AND v.lifecycle_stage = 'active'"
_LATEST = _VERSION + "AND v.lifecycle_stage = 'active' ORDER BY v.version DESC LIMIT 1"
# An alias never points at a deleted version (deleting a version that holds one is refused).
_BY_ALIAS = "SELECT v.* FROM model_versions v JOIN model_aliases a ON a.name = v.name AND a.version = v.version " \
            "JOIN registered_models m ON m.name = v.name WHERE a.name = ? AND a.alias = ? " \
            "AND m.lifecycle_stage = 'active'"
_TAGS = "SELECT key, value FROM model_version_tags WHERE name = ? AND version = ?"
_ALIASES = "SELECT alias FROM model_aliases WHERE name = ? AND version = ? ORDER BY alias"


def decode_version_row(row: dict) -> dict:
    """A `model_versions` row with its JSON columns decoded (absent ones empty)."""
    d = dict(row)
    for col in JSON_COLS:
        d[col] = json.loads(d[col]) if d.get(col) else ({} if col != "datasets" else [])
    return d


def find_version(uri: str, name: str, *, version: int | None = None, alias: str | None = None) -> dict | None:
    """The version row of `name/version`, `name@alias` or (neither given) the latest live version,
    or None when this fast path cannot tell (then ask `ModelRepo`)."""
    opened = _connect(uri)
    if opened is None:
        return None
    conn, errors, placeholder = opened
    try:
        return _read(conn, placeholder, name, version, alias)
    except (*errors, ValueError):  # a driver error or a bad JSON column: the regular path says why
        return None
    finally:
        conn.close()


def _read(conn: Any, placeholder: str, name: str, version: int | None, alias: str | None) -> dict | None:
    from mloop.store.migrate import head

    cur = conn.cursor()

    def rows(sql: str, *params: Any) -> list:
        cur.execute(sql.replace("?", placeholder), params)
        return cur.fetchall()

    if placeholder == "?":
        cur.execute("BEGIN")  # one read snapshot (deferred: it never blocks a writer)
    revision = rows("SELECT version_num FROM alembic_version")
    if [r[0] for r in revision] != [head()]:
        return None  # not migrated to head yet: opening the store through SQLAlchemy migrates it
    if alias is not None:
        found = rows(_BY_ALIAS, name, alias)
    elif version is not None:
        found = rows(_BY_NUMBER, name, int(version))
    else:
        found = rows(_LATEST, name)
    if not found:
        return None
    row = decode_version_row(dict(zip([c[0] for c in cur.description], found[0], strict=True)))
    row["tags"] = dict(rows(_TAGS, row["name"], row["version"]))
    row["aliases"] = [r[0] for r in rows(_ALIASES, row["name"], row["version"])]
    return row


def _connect(uri: str) -> tuple[Any, tuple[type[Exception], ...], str] | None:
    """`(connection, driver error classes, placeholder)`, or None for a store this path does not open."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///"):]
        if not path or path == ":memory:" or "?" in path:
            return None
        import sqlite3
        from urllib.parse import quote

        try:  # mode=rw: a missing file is an error here, never a new empty database
            conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=30, isolation_level=None)
        except sqlite3.Error:
            return None
        return conn, (sqlite3.Error,), "?"
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if uri.startswith(prefix):
            try:
                import psycopg
            except ImportError:
                return None
            # a short connect timeout: on an unreachable server this read gives up soon and the
            # regular path reports the error
            timeout = {} if "connect_timeout" in uri else {"connect_timeout": 5}
            try:
                conn = psycopg.connect("postgresql://" + uri[len(prefix):], **timeout)
                conn.read_only = True
            except psycopg.Error:
                return None
            return conn, (psycopg.Error,), "%s"
    return None
