"""Validation tables (suite versions, suite-to-dataset attachments) and their repositories.

A suite version keeps its YAML text in the row (suites are small), so reading one never touches
the blob store. Version numbers come from `store/versions.insert_versioned`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, String, Table, Text, UniqueConstraint, delete, func, select
from sqlalchemy.engine import Connection

from mloop.errors import NotFound
from mloop.store.db import Store
from mloop.store.schema import BigId, BigInteger, current_user, metadata, now_ms
from mloop.store.versions import insert_versioned

validation_suites = Table(
    "validation_suites",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", Text, nullable=False),  # the suite as YAML
    Column("expectations", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    UniqueConstraint("name", "version"),
)

validation_attachments = Table(
    "validation_attachments",
    metadata,
    Column("dataset", String(128), primary_key=True),
    Column("suite", String(160), nullable=False),  # "name" (follows the latest version) or "name@N"
    Column("created_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)


def _suite_row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


class SuiteRepo:
    """Versioned suites: `save` adds version N+1 of a name; `get` reads one (latest by default)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, name: str, definition: str, expectations: int, description: str | None = None) -> dict:
        def write(conn: Connection, version: int) -> dict:
            row = {"name": name, "version": version, "definition": definition, "expectations": expectations,
                   "description": description, "created_ms": now_ms(), "user": current_user()}
            conn.execute(validation_suites.insert().values(**row))
            return row

        return insert_versioned(self.store, validation_suites, "name", name, write)  # type: ignore[return-value]

    def get(self, name: str, version: int | None = None) -> dict:
        t = validation_suites.c
        query = select(validation_suites).where(t.name == name)
        query = query.where(t.version == version) if version is not None else query.order_by(t.version.desc())
        with self.store.read() as conn:
            row = conn.execute(query.limit(1)).first()
            if row is None:
                known = conn.execute(select(t.version).where(t.name == name).order_by(t.version)).scalars().all()
        if row is None:
            if known:
                raise NotFound(f"suite {name!r} has no version {version} (versions: "
                               f"{', '.join(map(str, known))})")
            raise NotFound(f"no suite named {name!r}; save one with 'mloop suites init --reference DATA "
                           f"--name {name}' or mloop.validation.save_suite(suite, {name!r})")
        return _suite_row(row)

    def versions(self, name: str) -> list[dict]:
        t = validation_suites.c
        with self.store.read() as conn:
            rows = conn.execute(select(validation_suites).where(t.name == name).order_by(t.version)).all()
        return [_suite_row(r) for r in rows]

    def latest(self) -> list[dict]:
        """The newest version of every suite, by name."""
        t = validation_suites.c
        newest = select(t.name, func.max(t.version).label("v")).group_by(t.name).subquery()
        query = select(validation_suites).join(
            newest, (t.name == newest.c.name) & (t.version == newest.c.v)).order_by(t.name)
        with self.store.read() as conn:
            return [_suite_row(r) for r in conn.execute(query).all()]


class AttachmentRepo:
    """Which suite validates each `add` of a dataset name."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def attach(self, dataset: str, suite: str) -> dict:
        row = {"dataset": dataset, "suite": suite, "created_ms": now_ms(), "user": current_user()}

        def write(conn: Connection) -> dict:
            conn.execute(delete(validation_attachments).where(validation_attachments.c.dataset == dataset))
            conn.execute(validation_attachments.insert().values(**row))
            return row

        return self.store.transact(write)

    def detach(self, dataset: str) -> bool:
        def write(conn: Connection) -> bool:
            res = conn.execute(delete(validation_attachments).where(validation_attachments.c.dataset == dataset))
            return bool(res.rowcount)

        return self.store.transact(write)

    def get(self, dataset: str) -> dict | None:
        with self.store.read() as conn:
            row = conn.execute(select(validation_attachments).where(
                validation_attachments.c.dataset == dataset)).first()
        return None if row is None else dict(row._mapping)

    def list(self) -> list[dict]:
        with self.store.read() as conn:
            rows = conn.execute(select(validation_attachments).order_by(validation_attachments.c.dataset)).all()
        return [dict(r._mapping) for r in rows]
