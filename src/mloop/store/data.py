"""Data tables (dataset versions, data remotes) and their repositories.

A dataset version is `(name, version)`; its content is one directory-manifest blob (`digest`), so
equal content gives an equal digest. The row and its `blob_refs` commit in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from mloop.errors import Conflict, NotFound
from mloop.store.data_quick import OWNER_KIND
from mloop.store.db import Store
from mloop.store.lineage import BlobRefRepo
from mloop.store.schema import BigId, current_user, metadata, now_ms
from mloop.store.versions import insert_versioned

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),  # the directory manifest's digest
    Column("is_dir", Boolean, nullable=False),  # a folder (else one file or a table)
    Column("format", String(16), nullable=False),  # files | parquet | csv
    Column("file_count", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=True),
    Column("schema", Text, nullable=True),  # JSON list of {"name", "dtype"}
    Column("profile", Text, nullable=True),  # JSON profile record (CONTRACTS.md)
    Column("source", String(1000), nullable=True),  # where it was added from (project-relative when inside)
    Column("message", Text, nullable=True),
    Column("forced", Boolean, nullable=False),  # committed although a check refused it
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    UniqueConstraint("name", "version"),
    Index(None, "digest"),
)

data_remotes = Table(
    "data_remotes",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("url", String(2000), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)


def _row(r: Any) -> dict:
    d = dict(r)
    for key in ("schema", "profile"):
        if d.get(key) is not None:
            d[key] = json.loads(d[key])
    return d


class DatasetVersionRepo:
    """Dataset version rows: insert (numbered per name), find by number / latest / digest prefix."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def insert(self, record: dict, blobs: list[str],
               before_commit: Callable[[Connection, dict], None] | None = None) -> dict:
        """Insert the next version of `record["name"]` with blob refs, in one transaction."""
        t = dataset_versions

        def write(conn: Connection, version: int) -> dict:
            row = {
                **record,
                "version": version,
                "schema": None if record.get("schema") is None else json.dumps(record["schema"]),
                "profile": None if record.get("profile") is None else json.dumps(record["profile"]),
                "lifecycle_stage": "active",
                "created_ms": now_ms(),
                "user": current_user(),
            }
            conn.execute(t.insert(), row)
            BlobRefRepo.add_in(conn, blobs, OWNER_KIND, f"{record['name']}/{version}")
            if before_commit is not None:
                before_commit(conn, row)
            return {**row, "schema": record.get("schema"), "profile": record.get("profile")}

        return insert_versioned(self.store, t, "name", record["name"], write)

    def find(self, name: str, version: int) -> dict | None:
        t = dataset_versions
        with self.store.read() as conn:
            r = conn.execute(select(t).where(t.c.name == name, t.c.version == version)).mappings().first()
        return _row(r) if r else None

    def latest(self, name: str, include_deleted: bool = False) -> dict | None:
        t = dataset_versions
        q = select(t).where(t.c.name == name)
        if not include_deleted:
            q = q.where(t.c.lifecycle_stage == "active")
        with self.store.read() as conn:
            r = conn.execute(q.order_by(t.c.version.desc()).limit(1)).mappings().first()
        return _row(r) if r else None

    def by_digest_prefix(self, name: str, prefix: str) -> list[dict]:
        t = dataset_versions
        with self.store.read() as conn:
            rows = conn.execute(
                select(t).where(t.c.name == name, t.c.digest.like(f"{prefix}%")).order_by(t.c.version)
            ).mappings().all()
        return [_row(r) for r in rows]

    def versions(self, name: str, include_deleted: bool = False) -> list[dict]:
        """Every version of a name, newest first."""
        t = dataset_versions
        q = select(t).where(t.c.name == name)
        if not include_deleted:
            q = q.where(t.c.lifecycle_stage == "active")
        with self.store.read() as conn:
            return [_row(r) for r in conn.execute(q.order_by(t.c.version.desc())).mappings()]

    def all(self, include_deleted: bool = False) -> list[dict]:
        """Every version of every name, without the profile JSON (names sorted, newest first)."""
        t = dataset_versions
        cols = [c for c in t.c if c.name != "profile"]
        q = select(*cols)
        if not include_deleted:
            q = q.where(t.c.lifecycle_stage == "active")
        with self.store.read() as conn:
            rows = conn.execute(q.order_by(t.c.name, t.c.version.desc())).mappings().all()
        return [_row(r) for r in rows]

    def names(self) -> list[dict]:
        """One summary per name: versions, latest version and when it was made (active versions only)."""
        t = dataset_versions
        with self.store.read() as conn:
            rows = conn.execute(
                select(t.c.name, func.count().label("versions"), func.max(t.c.version).label("latest"),
                       func.max(t.c.created_ms).label("updated_ms"))
                .where(t.c.lifecycle_stage == "active").group_by(t.c.name).order_by(t.c.name)
            ).mappings().all()
        return [dict(r) for r in rows]

    def set_stage(self, name: str, version: int, stage: str) -> None:
        t = dataset_versions
        done = self.store.transact(lambda conn: conn.execute(
            update(t).where(t.c.name == name, t.c.version == version).values(lifecycle_stage=stage)
        ).rowcount)
        if not done:
            raise NotFound(f"no dataset version {name}/{version}")


class DataRemoteRepo:
    """Named remotes for push/pull; at most one is the default."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, url: str, default: bool) -> None:
        t = data_remotes

        def write(conn: Connection) -> None:
            if conn.execute(select(t.c.name).where(t.c.name == name)).first() is not None:
                raise Conflict(f"remote {name!r} exists; remove it first with 'mloop data remote remove {name}'")
            first = conn.execute(select(func.count()).select_from(t)).scalar() == 0
            if default:
                conn.execute(update(t).values(is_default=False))
            conn.execute(t.insert(), {"name": name, "url": url, "is_default": default or first,
                                      "created_ms": now_ms(), "user": current_user()})

        self.store.transact(write)

    def remove(self, name: str) -> None:
        t = data_remotes
        if not self.store.transact(lambda conn: conn.execute(delete(t).where(t.c.name == name)).rowcount):
            raise NotFound(f"no remote {name!r}")

    def list(self) -> list[dict]:
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(select(data_remotes).order_by(data_remotes.c.name)).mappings()]
