"""Dataset version rows over store/quick.py's stdlib connection: `latest` and `insert`, the same
statements `DatasetVersionRepo.latest` / `insert` run on SQLite (tests compare the rows)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from mloop.store import quick
from mloop.store.stamps import current_user, now_ms

OWNER_KIND = "dataset_version"  # blob_refs.owner_kind and lineage kind of a dataset version
_BOOLS = ("is_dir", "forced")
_COLUMNS = ("name", "version", "digest", "is_dir", "format", "file_count", "size", "rows", "schema",
            "profile", "source", "message", "forced", "lifecycle_stage", "created_ms", "user")
_QUOTED = ", ".join(f'"{c}"' for c in _COLUMNS)
_INSERT = f"INSERT INTO dataset_versions ({_QUOTED}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _decoded(row: dict) -> dict:
    for key in ("schema", "profile"):
        if row.get(key) is not None:
            row[key] = json.loads(row[key])
    for key in _BOOLS:
        row[key] = bool(row[key])
    return row


def latest(conn: sqlite3.Connection, name: str) -> dict | None:
    """The newest active version row of `name` (as `DatasetVersionRepo.latest`)."""
    row = quick.one_row(conn, "SELECT * FROM dataset_versions WHERE name = ? AND lifecycle_stage = 'active' "
                              "ORDER BY version DESC LIMIT 1", name)
    return None if row is None else _decoded(row)


def insert(conn: sqlite3.Connection, record: dict, blobs: list[str],
           before_commit: Callable[[object, dict], None] | None = None) -> dict:
    """Insert the next version of `record["name"]` with its blob refs, in one transaction."""

    def write(c: sqlite3.Connection) -> dict:
        current = c.execute("SELECT max(version) FROM dataset_versions WHERE name = ?", (record["name"],)).fetchone()
        version = int(current[0] or 0) + 1
        row = {**record, "version": version,
               "schema": None if record.get("schema") is None else json.dumps(record["schema"]),
               "profile": None if record.get("profile") is None else json.dumps(record["profile"]),
               "lifecycle_stage": "active", "created_ms": now_ms(), "user": current_user()}
        c.execute(_INSERT, [row[col] for col in _COLUMNS])
        ts, user = now_ms(), current_user()
        owner = f"{record['name']}/{version}"
        c.executemany("INSERT INTO blob_refs (digest, owner_kind, owner_id, ts, \"user\") VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT DO NOTHING", [(d, OWNER_KIND, owner, ts, user) for d in dict.fromkeys(blobs)])
        if before_commit is not None:
            before_commit(c, row)
        return {**row, "schema": record.get("schema"), "profile": record.get("profile")}

    return quick.transact(conn, write)
