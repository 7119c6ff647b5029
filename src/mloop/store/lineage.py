"""Lineage edges between entities, and blob references (what garbage collection keeps).

An entity is `(kind, id)`: `run` (run id), `model_version` ("name/N"), `dataset_version`
("name/N"), `deployment`, `alert`, `pipeline_run` (their row ids).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Column, Index, String, Table, UniqueConstraint, and_, or_, select
from sqlalchemy.engine import Connection

from mloop.errors import InvalidInput
from mloop.store.db import Store
from mloop.store.schema import BigId, BigInteger, current_user, metadata, now_ms

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("from_kind", String(32), nullable=False),
    Column("from_id", String(300), nullable=False),
    Column("relation", String(32), nullable=False),
    Column("to_kind", String(32), nullable=False),
    Column("to_id", String(300), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    UniqueConstraint("from_kind", "from_id", "relation", "to_kind", "to_id"),
    Index(None, "from_kind", "from_id"),
    Index(None, "to_kind", "to_id"),
)

blob_refs = Table(
    "blob_refs",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("owner_kind", String(32), primary_key=True),
    Column("owner_id", String(300), primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)


@dataclass(frozen=True)
class Edge:
    """One lineage edge: `(from_kind, from_id) -relation-> (to_kind, to_id)`."""

    from_kind: str
    from_id: str
    relation: str
    to_kind: str
    to_id: str
    ts: int
    user: str


def _insert_ignore(conn: Connection, table: Table, rows: list[dict]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(table).on_conflict_do_nothing(), rows)


class LineageRepo:
    """Writes and walks lineage edges."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def add_in(conn: Connection, from_: tuple[str, str], relation: str, to: tuple[str, str]) -> None:
        """Add an edge inside the caller's transaction (an existing identical edge is kept)."""
        _insert_ignore(
            conn,
            lineage_edges,
            [
                {
                    "from_kind": from_[0],
                    "from_id": from_[1],
                    "relation": relation,
                    "to_kind": to[0],
                    "to_id": to[1],
                    "ts": now_ms(),
                    "user": current_user(),
                }
            ],
        )

    def add(self, from_: tuple[str, str], relation: str, to: tuple[str, str]) -> None:
        """Add an edge in its own transaction."""
        self.store.transact(lambda conn: self.add_in(conn, from_, relation, to))

    def edges(self, node: tuple[str, str], direction: str = "both") -> list[Edge]:
        """Edges leaving (`out`), entering (`in`) or touching (`both`) a node, oldest first."""
        t = lineage_edges
        out = and_(t.c.from_kind == node[0], t.c.from_id == node[1])
        inc = and_(t.c.to_kind == node[0], t.c.to_id == node[1])
        conds = {"out": out, "in": inc, "both": or_(out, inc)}
        if direction not in conds:
            raise InvalidInput(f"direction must be out, in or both, not {direction!r}")
        cond = conds[direction]
        with self.store.read() as conn:
            rows = conn.execute(select(t).where(cond).order_by(t.c.ts, t.c.id)).mappings().all()
        return [Edge(**{k: r[k] for k in Edge.__dataclass_fields__}) for r in rows]


class BlobRefRepo:
    """Who points at which blob; a blob with no reference (and no live manifest) may be collected."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def add_in(conn: Connection, digests: Iterable[str], owner_kind: str, owner_id: str) -> None:
        """Reference blobs from an owner inside the caller's transaction."""
        ts, user = now_ms(), current_user()
        rows = [
            {"digest": d, "owner_kind": owner_kind, "owner_id": owner_id, "ts": ts, "user": user}
            for d in dict.fromkeys(digests)
        ]
        _insert_ignore(conn, blob_refs, rows)

    def live_digests(self) -> set[str]:
        """Every digest some row references."""
        with self.store.read() as conn:
            return set(conn.execute(select(blob_refs.c.digest).distinct()).scalars())

    def owners(self, digest: str) -> list[tuple[str, str]]:
        """The `(owner_kind, owner_id)` pairs referencing a digest."""
        with self.store.read() as conn:
            rows = conn.execute(
                select(blob_refs.c.owner_kind, blob_refs.c.owner_id).where(blob_refs.c.digest == digest)
            ).all()
        return [(r[0], r[1]) for r in rows]
