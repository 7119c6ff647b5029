"""Registry tables (registered models, versions, tags, aliases, alias history) and their repositories.

A version row carries the model's manifest and signature as JSON, so `get` never reads a blob
(store/registry_lookup.py reads one such row without SQLAlchemy, for a fresh process's load).
Version numbers come from `store/versions.insert_versioned`; an alias move, its history row and
its `promoted` lineage edge commit in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection

from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.store.db import Store
from mloop.store.lineage import BlobRefRepo, LineageRepo
from mloop.store.registry_lookup import JSON_COLS, decode_version_row
from mloop.store.schema import BigId, BigInteger, current_user, metadata, now_ms
from mloop.store.versions import insert_versioned

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    ForeignKeyConstraint(["name"], ["registered_models.name"]),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("digest", String(80), nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("task", String(32), nullable=True),
    Column("signature", Text, nullable=False),
    Column("manifest", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("datasets", Text, nullable=False),
    Column("validation_data", String(80), nullable=True),
    Column("description", Text, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    ForeignKeyConstraint(["name"], ["registered_models.name"]),
    Index(None, "name", "version", unique=True),
    Index(None, "digest"),
    Index(None, "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    ForeignKeyConstraint(["name"], ["registered_models.name"]),
)

# Every alias move: from_version None = newly set; to_version None = deleted.
alias_history = Table(
    "alias_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Index(None, "name", "alias", "ts"),
)



def _upsert(conn: Connection, table: Table):  # noqa: ANN202
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _compare(col, op: str, value):  # noqa: ANN001, ANN202
    ops = {"=": lambda: col == value, "!=": lambda: col != value, "<": lambda: col < value,
           "<=": lambda: col <= value, ">": lambda: col > value, ">=": lambda: col >= value,
           "LIKE": lambda: col.like(value), "ILIKE": lambda: func.lower(col).like(func.lower(value)),
           "IN": lambda: col.in_(list(value)), "NOT IN": lambda: col.not_in(list(value))}
    if op not in ops:
        raise InvalidInput(f"unsupported operator {op!r} in a model filter")
    return ops[op]()


class ModelRepo:
    """Registered models, their versions, tags and aliases."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- registered models ------------------------------------------------------------------
    def ensure_model_in(self, conn: Connection, name: str) -> None:
        """Create the registered model if missing (race-safe), inside the caller's transaction."""
        ts = now_ms()
        stmt = _upsert(conn, registered_models).on_conflict_do_nothing()
        conn.execute(stmt, {"name": name, "description": None, "lifecycle_stage": "active",
                            "created_ms": ts, "updated_ms": ts, "user": current_user()})
        stage = conn.execute(select(registered_models.c.lifecycle_stage)
                             .where(registered_models.c.name == name)).scalar()
        if stage == "deleted":
            raise Conflict(f"model {name!r} is deleted; restore it with 'mloop models restore {name}'")

    def model(self, name: str) -> dict | None:
        with self.store.read() as conn:
            row = conn.execute(select(registered_models).where(registered_models.c.name == name)).mappings().first()
            if row is None:
                return None
            out = dict(row)
            t = registered_model_tags.c
            out["tags"] = dict(conn.execute(select(t.key, t.value).where(t.name == name)).all())
        return out

    def models(self, include_deleted: bool = False) -> list[dict]:
        m = registered_models.c
        query = select(registered_models).order_by(m.name)
        if not include_deleted:
            query = query.where(m.lifecycle_stage == "active")
        with self.store.read() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
            tags: dict[str, dict] = {}
            t = registered_model_tags.c
            for name, key, value in conn.execute(select(t.name, t.key, t.value)):
                tags.setdefault(name, {})[key] = value
            mv = model_versions.c
            latest = dict(conn.execute(
                select(mv.name, func.max(mv.version)).where(mv.lifecycle_stage == "active").group_by(mv.name)
            ).all())
            counts = dict(conn.execute(
                select(mv.name, func.count()).where(mv.lifecycle_stage == "active").group_by(mv.name)
            ).all())
            aliases: dict[str, dict] = {}
            for name, alias, version in conn.execute(select(model_aliases.c.name, model_aliases.c.alias,
                                                            model_aliases.c.version)):
                aliases.setdefault(name, {})[alias] = version
        for r in rows:
            r.update(tags=tags.get(r["name"], {}), latest_version=latest.get(r["name"]),
                     versions=counts.get(r["name"], 0), aliases=aliases.get(r["name"], {}))
        return rows

    def set_model_fields(self, name: str, **values: Any) -> None:
        values["updated_ms"] = now_ms()
        self.store.transact(lambda conn: conn.execute(
            update(registered_models).where(registered_models.c.name == name).values(**values)))

    def set_model_tags(self, name: str, tags: dict[str, str]) -> None:
        self._set_tags(registered_model_tags, {"name": name}, ["name", "key"], tags)

    # -- versions ---------------------------------------------------------------------------
    def create_version(self, row: dict, tags: dict[str, str] | None = None,
                       edges: Sequence[tuple[tuple[str, str], str]] = (),
                       blobs: Sequence[str] = ()) -> dict:
        """Insert the next version of `row["name"]` with its tags, blob refs and lineage edges
        (`((from_kind, from_id), relation)` pointing at the new version); returns the version row
        as inserted, in the shape `version()` reads (no aliases yet)."""
        name = row["name"]

        def write(conn: Connection, version: int) -> dict:
            self.ensure_model_in(conn, name)
            ts = now_ms()
            values = {**row, "version": version, "created_ms": ts, "updated_ms": ts, "user": current_user(),
                      "lifecycle_stage": "active"}
            for col in JSON_COLS:
                values[col] = json.dumps(values.get(col) if values.get(col) is not None else
                                         ([] if col == "datasets" else {}), default=str)
            inserted = conn.execute(model_versions.insert(), values)
            values["id"] = inserted.inserted_primary_key[0]
            ident = f"{name}/{version}"
            if tags:
                conn.execute(model_version_tags.insert(), [
                    {"name": name, "version": version, "key": k, "value": v, "ts": ts, "user": current_user()}
                    for k, v in tags.items()])
            BlobRefRepo.add_in(conn, [d for d in blobs if d], "model_version", ident)
            for source, relation in edges:
                LineageRepo.add_in(conn, source, relation, ("model_version", ident))
            conn.execute(update(registered_models).where(registered_models.c.name == name).values(updated_ms=ts))
            created = decode_version_row({c.name: values.get(c.name) for c in model_versions.c})
            return {**created, "tags": dict(tags or {}), "aliases": []}

        return insert_versioned(self.store, model_versions, "name", name, write)  # type: ignore[return-value]

    def version(self, name: str, version: int) -> dict | None:
        mv = model_versions.c
        rows = self._load_versions(and_(mv.name == name, mv.version == version), include_deleted=True)
        return rows[0] if rows else None

    def versions(self, name: str, include_deleted: bool = False) -> list[dict]:
        return self._load_versions(model_versions.c.name == name, include_deleted=include_deleted)

    def latest(self, name: str) -> int | None:
        mv = model_versions.c
        with self.store.read() as conn:
            return conn.execute(select(func.max(mv.version))
                                .where(mv.name == name, mv.lifecycle_stage == "active")).scalar()

    def by_digest_prefix(self, name: str, prefix: str) -> list[int]:
        mv = model_versions.c
        with self.store.read() as conn:
            return list(conn.execute(select(mv.version).where(
                mv.name == name, mv.digest.like(f"blake3:{prefix}%"), mv.lifecycle_stage == "active",
            ).order_by(mv.version)).scalars())

    def _load_versions(self, cond, include_deleted: bool = False) -> list[dict]:  # noqa: ANN001
        mv = model_versions.c
        query = select(model_versions).where(cond).order_by(mv.name, mv.version)
        if not include_deleted:
            query = query.where(mv.lifecycle_stage == "active")
        with self.store.read() as conn:
            rows = [decode_version_row(r) for r in conn.execute(query).mappings()]
            names = sorted({r["name"] for r in rows})
            if not rows:
                return []
            t = model_version_tags.c
            tags: dict[tuple[str, int], dict] = {}
            for name, ver, key, value in conn.execute(
                    select(t.name, t.version, t.key, t.value).where(t.name.in_(names))):
                tags.setdefault((name, ver), {})[key] = value
            a = model_aliases.c
            aliases: dict[tuple[str, int], list] = {}
            for name, alias, ver in conn.execute(
                    select(a.name, a.alias, a.version).where(a.name.in_(names)).order_by(a.alias)):
                aliases.setdefault((name, ver), []).append(alias)
        for r in rows:
            key = (r["name"], r["version"])
            r["tags"] = tags.get(key, {})
            r["aliases"] = aliases.get(key, [])
        return rows

    def set_version_fields(self, name: str, version: int, **values: Any) -> None:
        values["updated_ms"] = now_ms()
        mv = model_versions.c
        self.store.transact(lambda conn: conn.execute(
            update(model_versions).where(mv.name == name, mv.version == version).values(**values)))

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> None:
        self._set_tags(model_version_tags, {"name": name, "version": version}, ["name", "version", "key"], tags)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        t = model_version_tags.c
        self.store.transact(lambda conn: conn.execute(
            delete(model_version_tags).where(t.name == name, t.version == version, t.key == key)))

    def _set_tags(self, table: Table, owner: dict, index: list[str], tags: dict[str, str]) -> None:
        ts, user = now_ms(), current_user()
        rows = [{**owner, "key": k, "value": str(v), "ts": ts, "user": user} for k, v in tags.items()]

        def write(conn: Connection) -> None:
            stmt = _upsert(conn, table)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=index,
                set_={"value": stmt.excluded.value, "ts": stmt.excluded.ts, "user": stmt.excluded.user}), rows)

        if rows:
            self.store.transact(write)

    # -- aliases ----------------------------------------------------------------------------
    def aliases(self, name: str) -> dict[str, int]:
        a = model_aliases.c
        with self.store.read() as conn:
            return dict(conn.execute(select(a.alias, a.version).where(a.name == name).order_by(a.alias)).all())

    def move_alias(self, name: str, alias: str, version: int | None, reason: str | None) -> int | None:
        """Point `alias` at `version` (None deletes it): the move, a history row and, for a move onto a
        version, a `promoted` lineage edge, in one transaction. Returns the previous version."""

        def write(conn: Connection) -> int | None:
            a = model_aliases.c
            previous = conn.execute(select(a.version).where(a.name == name, a.alias == alias)).scalar()
            ts, user = now_ms(), current_user()
            if version is None:
                if previous is None:
                    raise NotFound(f"model {name!r} has no alias {alias!r}")
                conn.execute(delete(model_aliases).where(a.name == name, a.alias == alias))
            else:
                mv = model_versions.c
                live = conn.execute(select(mv.lifecycle_stage).where(mv.name == name, mv.version == version)).scalar()
                if live != "active":
                    raise NotFound(f"model {name!r} has no version {version}" +
                                   (" (it is deleted)" if live else ""))
                stmt = _upsert(conn, model_aliases)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=["name", "alias"],
                    set_={"version": stmt.excluded.version, "ts": stmt.excluded.ts, "user": stmt.excluded.user}),
                    {"name": name, "alias": alias, "version": version, "ts": ts, "user": user})
            conn.execute(alias_history.insert(), {"name": name, "alias": alias, "from_version": previous,
                                                  "to_version": version, "ts": ts, "user": user, "reason": reason})
            if version is not None:
                LineageRepo.add_in(conn, ("model_version", f"{name}/{version}"), "promoted", ("alias", f"{name}@{alias}"))
            return previous

        return self.store.transact(write)

    def history(self, name: str, alias: str | None = None) -> list[dict]:
        h = alias_history.c
        query = select(alias_history).where(h.name == name).order_by(h.ts, h.id)
        if alias is not None:
            query = query.where(h.alias == alias)
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- soft delete ------------------------------------------------------------------------
    def set_version_stage(self, name: str, version: int, stage: str) -> None:
        def write(conn: Connection) -> None:
            if stage == "deleted":
                a = model_aliases.c
                held = list(conn.execute(select(a.alias).where(a.name == name, a.version == version)).scalars())
                if held:
                    raise Conflict(f"{name}/{version} holds alias(es) {', '.join(held)}; move or delete them first "
                                   f"('mloop models delete-alias {name} {held[0]}')")
            mv = model_versions.c
            conn.execute(update(model_versions).where(mv.name == name, mv.version == version)
                         .values(lifecycle_stage=stage, updated_ms=now_ms()))

        self.store.transact(write)

    def set_model_stage(self, name: str, stage: str) -> None:
        self.set_model_fields(name, lifecycle_stage=stage)

    # -- search -----------------------------------------------------------------------------
    def search(self, clauses: Sequence[tuple[str, str, str, Any]], include_deleted: bool = False,
               limit: int | None = None) -> list[dict]:
        """Versions matching every `(kind, key, op, value)` clause; kind is `name`, `version`, `run_id`,
        `flavor`, `task`, `tags` (the model's), `version_tags` or `metrics`."""
        mv = model_versions.c
        cond = []
        for kind, key, op, value in clauses:
            if kind == "attributes":
                col = {"name": mv.name, "version": mv.version, "run_id": mv.run_id, "flavor": mv.flavor,
                       "task": mv.task, "created": mv.created_ms, "digest": mv.digest}.get(key)
                if col is None:
                    raise InvalidInput(f"unknown model attribute {key!r} in filter; known: name, version, run_id, "
                                       "flavor, task, created, digest")
                cond.append(_compare(col, op, value))
            elif kind == "tags":
                t = registered_model_tags.c
                cond.append(exists().where(t.name == mv.name, t.key == key, _compare(t.value, op, value)))
            elif kind == "version_tags":
                t = model_version_tags.c
                cond.append(exists().where(t.name == mv.name, t.version == mv.version, t.key == key,
                                           _compare(t.value, op, value)))
            else:
                raise InvalidInput(f"cannot filter models on {kind}.{key}; use name, tags.K, version_tags.K")
        m = registered_models.c
        if not include_deleted:
            cond.append(exists().where(m.name == mv.name, m.lifecycle_stage == "active"))
        rows = self._load_versions(and_(true(), *cond), include_deleted=include_deleted)
        rows.sort(key=lambda r: (r["name"], -r["version"]))
        return rows[:limit] if limit else rows


__all__ = [
    "registered_models", "registered_model_tags", "model_versions", "model_version_tags", "model_aliases",
    "alias_history", "ModelRepo",
]
