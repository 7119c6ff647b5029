"""Tracking tables (experiments, runs, params, tags, metrics, artifacts, environments) and their
repositories. The search compiler turns parsed MLflow-style filters into SQL here, so no SQL
lives outside store/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    column,
    exists,
    func,
    literal,
    not_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mloop._faults import crash_point
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.store.db import Store
from mloop.store.lineage import BlobRefRepo, _insert_ignore
from mloop.store.schema import BigId, BigInteger, current_user, metadata, now_ms

experiments = Table(
    "experiments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("id", String(80), primary_key=True),  # blake3 of the canonical JSON
    Column("data", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", String(32), ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("parent_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
    Column("heartbeat_ms", BigInteger, nullable=False),
    Column("heartbeat_interval_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    Column("environment_id", String(80), ForeignKey("environments.id"), nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, server_default="active"),
    Column("error", Text, nullable=True),
    Index(None, "experiment_id", "start_ms"),
    Index(None, "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    Index(None, "key", "value"),
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    Index(None, "key", "value"),
)

# Every logged value; NaN is stored as 0 plus is_nan (SQLite cannot keep NaN).
metrics = Table(
    "metrics",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Index(None, "run_id", "key", "step", "ts"),
)

# The latest value per (run, key): highest step, then newest timestamp. Search reads this.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Index(None, "key", "value"),
)

# One row per applied metric batch: a replayed batch (same client id) is ignored. The batch row
# carries the writing user, so metric rows need not repeat it.
metric_batches = Table(
    "metric_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("rows", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("is_dir", Boolean, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT = "Default"
TERMINAL = ("FINISHED", "FAILED", "KILLED")


def _upsert(conn: Connection, table: Table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def status_expr(now: int):
    """The run's effective status: a RUNNING run whose heartbeat is older than 3x its interval is LOST."""
    r = runs.c
    return case(
        (and_(r.status == "RUNNING", r.heartbeat_ms < literal(now) - 3 * r.heartbeat_interval_ms), "LOST"),
        else_=r.status,
    )


class ExperimentRepo:
    """Experiments by id or name; creation is race-safe (insert, then re-select on conflict)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_or_create(self, name: str) -> dict:
        """The experiment called `name` (never one whose id happens to be `name`), created if missing."""
        found = self.find_by_name(name)
        if found is not None:
            if found["lifecycle_stage"] == "deleted":
                raise Conflict(
                    f"experiment {name!r} is deleted; restore it with 'mloop experiments restore {name}'"
                )
            return found
        for _ in range(50):
            try:
                return self.store.transact(lambda conn: self._insert(conn, name))
            except IntegrityError:
                found = self.find_by_name(name)
                if found is not None:
                    return found
        raise Conflict(f"could not create experiment {name!r}")

    def _insert(self, conn: Connection, name: str) -> dict:
        if name == DEFAULT_EXPERIMENT:
            new_id = DEFAULT_EXPERIMENT_ID
        else:
            ids = conn.execute(select(experiments.c.id)).scalars().all()
            new_id = str(max((int(i) for i in ids if i.isdigit()), default=0) + 1)
        ts = now_ms()
        row = {"id": new_id, "name": name, "lifecycle_stage": "active", "created_ms": ts, "updated_ms": ts,
               "user": current_user()}
        conn.execute(experiments.insert(), row)
        return row

    def find_by_name(self, name: str) -> dict | None:
        with self.store.read() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).mappings().first()
        return dict(row) if row else None

    def find(self, id_or_name: str) -> dict | None:
        """By name first, then by id."""
        e = experiments.c
        with self.store.read() as conn:
            row = conn.execute(select(experiments).where(e.name == id_or_name)).mappings().first()
            if row is None:
                row = conn.execute(select(experiments).where(e.id == id_or_name)).mappings().first()
        return dict(row) if row else None

    def get(self, id_or_name: str) -> dict:
        found = self.find(id_or_name)
        if found is None:
            names = [x["name"] for x in self.list()]
            raise NotFound(f"no experiment {id_or_name!r} (experiments: {', '.join(names) or 'none'})")
        return found

    def list(self, include_deleted: bool = False) -> list[dict]:
        query = select(experiments).order_by(experiments.c.created_ms)
        if not include_deleted:
            query = query.where(experiments.c.lifecycle_stage == "active")
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def set_stage(self, id_or_name: str, stage: str) -> dict:
        exp = self.get(id_or_name)
        self.store.transact(
            lambda conn: conn.execute(
                update(experiments).where(experiments.c.id == exp["id"]).values(lifecycle_stage=stage,
                                                                                 updated_ms=now_ms())
            )
        )
        return {**exp, "lifecycle_stage": stage}


class EnvironmentRepo:
    """Run environments, stored once per distinct content (child runs share their parent's)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, env_id: str, data: dict) -> str:
        row = {"id": env_id, "data": json.dumps(data, sort_keys=True), "created_ms": now_ms()}
        self.store.transact(lambda conn: _insert_ignore(conn, environments, [row]))
        return env_id

    def get(self, env_id: str) -> dict:
        with self.store.read() as conn:
            data = conn.execute(select(environments.c.data).where(environments.c.id == env_id)).scalar()
        return json.loads(data) if data else {}


@dataclass(frozen=True)
class Clause:
    """One parsed filter comparison: `kind.key op value` (kind: metrics, params, tags, attributes)."""

    kind: str
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class OrderBy:
    kind: str
    key: str
    descending: bool


_ATTRIBUTES = {
    "run_id": runs.c.id,
    "id": runs.c.id,
    "run_name": runs.c.name,
    "name": runs.c.name,
    "status": None,  # effective status, computed
    "start_time": runs.c.start_ms,
    "end_time": runs.c.end_ms,
    "user": runs.c.user,
    "user_id": runs.c.user,  # MLflow's name
    "created": runs.c.start_ms,  # MLflow's name
    "experiment_id": runs.c.experiment_id,
    "parent_id": runs.c.parent_id,
}


ATTRIBUTE_KEYS = frozenset(_ATTRIBUTES)
_STRING_ATTRS = {"run_id", "id", "run_name", "name", "status", "user", "user_id", "experiment_id", "parent_id"}
NUMERIC_ATTRIBUTES = ATTRIBUTE_KEYS - _STRING_ATTRS  # int ms timestamps


def _like_tokens(pattern: str) -> list[tuple[str, str]]:
    """A LIKE pattern as `("any"|"one"|"lit", char)` tokens; a backslash makes the next char literal."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(("lit", pattern[i + 1]))
            i += 2
            continue
        out.append(("any", c) if c == "%" else ("one", c) if c == "_" else ("lit", c))
        i += 1
    return out


def _like_to_glob(pattern: str) -> str:
    """SQLite's GLOB is case-sensitive whatever the PRAGMAs, so LIKE compiles to it there."""
    special = {"*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join("*" if k == "any" else "?" if k == "one" else special.get(c, c) for k, c in _like_tokens(pattern))


def _like_for_pg(pattern: str) -> str:
    """The pattern with exactly the escapes PostgreSQL's `LIKE ... ESCAPE '\\'` expects."""
    return "".join("%" if k == "any" else "_" if k == "one" else ("\\" + c if c in "%_\\" else c)
                   for k, c in _like_tokens(pattern))


def _compare(col, op: str, value, dialect: str, *, text: bool):  # noqa: ANN001
    """`col op value` in SQL. Strings compare by code point on both dialects (COLLATE "C" on
    PostgreSQL); LIKE is case-sensitive and ILIKE is not, on both."""
    if op in ("LIKE", "ILIKE"):
        if dialect == "sqlite":
            if op == "LIKE":
                return col.op("GLOB")(_like_to_glob(value))
            return func.lower(col).op("GLOB")(func.lower(literal(_like_to_glob(value))))
        pattern = _like_for_pg(value)
        return col.like(pattern, escape="\\") if op == "LIKE" else col.ilike(pattern, escape="\\")
    if text and dialect == "postgresql" and op in ("<", "<=", ">", ">="):
        col = col.collate("C")
    if op == "=":
        return col == value
    if op == "!=":
        return col != value
    if op == "<":
        return col < value
    if op == "<=":
        return col <= value
    if op == ">":
        return col > value
    if op == ">=":
        return col >= value
    if op == "IN":
        return col.in_(list(value))
    if op == "NOT IN":
        return col.not_in(list(value))
    raise InvalidInput(f"bad filter: unsupported operator {op!r}")


def _id_list(ids: Sequence[str], dialect: str):  # noqa: ANN202
    """A whole id list as ONE bound parameter (`= ANY(array)` / `json_each`), so loading any number
    of runs is a fixed number of statements with no parameter limit."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return lambda col: col == func.any(bindparam("ids", list(ids), type_=ARRAY(String)))
    values = select(column("value")).select_from(func.json_each(bindparam("ids", json.dumps(list(ids)))))
    return lambda col: col.in_(values.scalar_subquery())


class RunRepo:
    """Run rows: create, status changes, heartbeats, soft delete, and search."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, row: dict, params_: dict[str, str] | None = None, tags_: dict[str, str] | None = None,
               environment: dict | None = None) -> None:
        """Insert a run with its first params and tags, and its environment row if the store lacks it,
        in one transaction."""

        def write(conn: Connection) -> None:
            env_id = row.get("environment_id")
            if env_id and environment is not None:
                known = conn.execute(select(environments.c.id).where(environments.c.id == env_id)).first()
                if known is None:
                    _insert_ignore(conn, environments, [
                        {"id": env_id, "data": json.dumps(environment, sort_keys=True), "created_ms": now_ms()}
                    ])
            conn.execute(runs.insert(), row)
            ts, user = row["start_ms"], row["user"]
            if params_:
                conn.execute(params.insert(), [
                    {"run_id": row["id"], "key": k, "value": v, "ts": ts, "user": user} for k, v in params_.items()
                ])
            if tags_:
                conn.execute(tags.insert(), [
                    {"run_id": row["id"], "key": k, "value": v, "ts": ts, "user": user} for k, v in tags_.items()
                ])
            crash_point("run.create.before_commit")

        self.store.transact(write)

    def get(self, run_id: str) -> dict:
        rows = self.load([run_id])
        if not rows:
            raise NotFound(f"no run {run_id!r}; list runs with 'mloop runs list'")
        return rows[0]

    def exists(self, run_id: str) -> bool:
        with self.store.read() as conn:
            return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def load(self, run_ids: Sequence[str]) -> list[dict]:
        """Fully loaded runs (row, params, tags, latest metrics, experiment name) in the given order.

        Four statements whatever the number of runs."""
        if not run_ids:
            return []
        now = now_ms()
        out: dict[str, dict] = {}
        among = _id_list(run_ids, self.store.dialect)
        with self.store.read() as conn:
            query = (
                select(runs, status_expr(now).label("effective_status"), experiments.c.name.label("experiment"))
                .join(experiments, experiments.c.id == runs.c.experiment_id)
                .where(among(runs.c.id))
            )
            for r in conn.execute(query).mappings():
                d = dict(r)
                d["status"] = d.pop("effective_status")
                d.update(params={}, tags={}, metrics={})
                out[d["id"]] = d
            for table, field in ((params, "params"), (tags, "tags")):
                for run_id, key, value in conn.execute(
                    select(table.c.run_id, table.c.key, table.c.value).where(among(table.c.run_id))
                ):
                    if run_id in out:
                        out[run_id][field][key] = value
            lm = latest_metrics.c
            for run_id, key, value, is_nan in conn.execute(
                select(lm.run_id, lm.key, lm.value, lm.is_nan).where(among(lm.run_id))
            ):
                if run_id in out:
                    out[run_id]["metrics"][key] = math.nan if is_nan else value
        return [out[i] for i in run_ids if i in out]

    def set_status(self, run_id: str, status: str, *, end_ms: int | None = None, error: str | None = None) -> None:
        self.store.transact(lambda conn: self.set_status_in(conn, run_id, status, end_ms=end_ms, error=error))

    @staticmethod
    def set_status_in(conn: Connection, run_id: str, status: str, *, end_ms: int | None = None,
                      error: str | None = None) -> None:
        """Set a run's status inside the caller's transaction (end_run commits it with the last metrics)."""
        values: dict[str, Any] = {"status": status, "heartbeat_ms": now_ms()}
        if end_ms is not None:
            values["end_ms"] = end_ms
        if error is not None:
            values["error"] = error
        conn.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def resume(self, run_id: str, heartbeat_interval_ms: int, params_: dict[str, str] | None = None) -> dict:
        """Mark an existing run RUNNING again (end time and error cleared); returns it loaded.
        `params_` about to be logged are checked first, so a clash leaves the run as it was."""
        found = self.get(run_id)
        if params_:
            ParamRepo.check(run_id, found["params"], params_)
        if found["lifecycle_stage"] == "deleted":
            raise Conflict(f"run {run_id} is deleted; restore it with 'mloop runs restore {run_id}' to resume it")
        ts = now_ms()
        self.store.transact(lambda conn: conn.execute(
            update(runs).where(runs.c.id == run_id).values(
                status="RUNNING", end_ms=None, error=None, heartbeat_ms=ts, heartbeat_interval_ms=heartbeat_interval_ms)
        ))
        return {**found, "status": "RUNNING", "end_ms": None, "error": None, "heartbeat_ms": ts,
                "heartbeat_interval_ms": heartbeat_interval_ms}

    def heartbeat(self, run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        if ids:
            ts = now_ms()
            self.store.transact(lambda conn: conn.execute(
                update(runs).where(runs.c.id.in_(ids), runs.c.status == "RUNNING").values(heartbeat_ms=ts)
            ))

    def set_stage(self, run_id: str, stage: str) -> None:
        self.get(run_id)
        self.store.transact(
            lambda conn: conn.execute(update(runs).where(runs.c.id == run_id).values(lifecycle_stage=stage))
        )

    def search(
        self,
        experiment_ids: Sequence[str] | None,
        clauses: Sequence[Clause],
        order_by: Sequence[OrderBy],
        limit: int | None,
        include_deleted: bool = False,
    ) -> list[str]:
        """Run ids matching every clause, ordered; compiled to one SQL query.

        Runs of deleted experiments are left out unless experiments are named or `include_deleted`.
        """
        now = now_ms()
        dialect = self.store.dialect
        query = select(runs.c.id)
        if experiment_ids is not None:
            query = query.where(runs.c.experiment_id.in_(list(experiment_ids)))
        if not include_deleted:
            query = query.where(runs.c.lifecycle_stage == "active")
            if experiment_ids is None:
                active = select(experiments.c.id).where(experiments.c.lifecycle_stage == "active")
                query = query.where(runs.c.experiment_id.in_(active))
        for clause in clauses:
            query = query.where(self._clause(clause, now, dialect))
        for i, order in enumerate(order_by):
            col = self._order_col(order, i, now, dialect)
            query = query.order_by(col.is_(None), col.desc() if order.descending else col.asc())
        query = query.order_by(runs.c.start_ms.desc(), runs.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.store.read() as conn:
            return list(conn.execute(query).scalars())

    @staticmethod
    def _attribute(key: str, now: int):  # noqa: ANN205
        if key == "status":
            return status_expr(now)
        col = _ATTRIBUTES.get(key)
        if col is None:
            raise InvalidInput(f"bad filter: unknown attribute {key!r}; known: {', '.join(sorted(_ATTRIBUTES))}")
        return col

    @classmethod
    def _clause(cls, clause: Clause, now: int, dialect: str):  # noqa: ANN206
        if clause.kind == "attributes":
            col = cls._attribute(clause.key, now)
            return _compare(col, clause.op, clause.value, dialect, text=clause.key in _STRING_ATTRS)
        if clause.kind == "metrics":
            lm = latest_metrics.c
            return exists().where(
                lm.run_id == runs.c.id, lm.key == clause.key, not_(lm.is_nan),
                _compare(lm.value, clause.op, clause.value, dialect, text=False),
            )
        table = {"params": params, "tags": tags}[clause.kind]
        return exists().where(table.c.run_id == runs.c.id, table.c.key == clause.key,
                              _compare(table.c.value, clause.op, clause.value, dialect, text=True))

    @classmethod
    def _order_col(cls, order: OrderBy, i: int, now: int, dialect: str):  # noqa: ANN206
        if order.kind == "attributes":
            col = cls._attribute(order.key, now)
            text = order.key in _STRING_ATTRS
        elif order.kind == "metrics":
            lm = latest_metrics.alias(f"om{i}")
            return (
                select(case((lm.c.is_nan, None), else_=lm.c.value))
                .where(lm.c.run_id == runs.c.id, lm.c.key == order.key)
                .scalar_subquery()
            )
        else:
            table = {"params": params, "tags": tags}[order.kind].alias(f"o{i}")
            col = select(table.c.value).where(table.c.run_id == runs.c.id, table.c.key == order.key).scalar_subquery()
            text = True
        return col.collate("C") if text and dialect == "postgresql" else col


class ParamRepo:
    """Params are write-once: the same value again is a no-op, another value a Conflict."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def check(run_id: str, existing: dict[str, str], values: dict[str, str]) -> None:
        """Conflict, naming both values, if `values` changes any of the `existing` params."""
        clashes = {k: (existing[k], v) for k, v in values.items() if k in existing and existing[k] != v}
        if clashes:
            detail = "; ".join(f"{k!r}: logged {old!r}, now {new!r}" for k, (old, new) in clashes.items())
            raise Conflict(f"run {run_id} already has param(s) with another value ({detail}); "
                           "params are write-once, log a new key or start a new run")

    def log(self, run_id: str, values: dict[str, str]) -> None:
        def write(conn: Connection) -> None:
            existing = dict(conn.execute(
                select(params.c.key, params.c.value).where(params.c.run_id == run_id, params.c.key.in_(list(values)))
            ).all())
            self.check(run_id, existing, values)
            ts, user = now_ms(), current_user()
            fresh = [{"run_id": run_id, "key": k, "value": v, "ts": ts, "user": user}
                     for k, v in values.items() if k not in existing]
            if fresh:
                conn.execute(params.insert(), fresh)

        try:
            self.store.transact(write)
        except IntegrityError:
            # Another writer logged one of these keys between our read and insert (PostgreSQL):
            # read again, which is now a no-op or a Conflict naming both values.
            self.store.transact(write)


class TagRepo:
    """Tags are mutable key/values on a run (the last write wins)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def set(self, run_id: str, values: dict[str, str]) -> None:
        rows = [{"run_id": run_id, "key": k, "value": v, "ts": now_ms(), "user": current_user()}
                for k, v in values.items()]

        def write(conn: Connection) -> None:
            stmt = _upsert(conn, tags)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={"value": stmt.excluded.value, "ts": stmt.excluded.ts, "user": stmt.excluded.user},
            ), rows)

        if rows:
            self.store.transact(write)


class MetricRepo:
    """Metric batches (idempotent by batch id), history, and the latest value per key."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write_batch(self, batch_id: str, rows: list[tuple[str, str, float, int, int]],
                    also: Callable[[Connection], object] | None = None) -> bool:
        """Insert `(run_id, key, value, step, ts)` rows once; False if this batch was already applied.
        `also(conn)` runs in the same transaction either way.

        The rows go in through the driver (`executemany` on SQLite, `COPY` on PostgreSQL): this is
        the hot path, and SQLAlchemy's per-row parameter handling would cost more than the insert.
        """
        records: list[tuple] = []
        latest: dict[tuple[str, str], tuple] = {}
        for run_id, key, value, step, ts in rows:
            nan = value != value
            rec = (run_id, key, step, ts, 0.0 if nan else value, nan)
            records.append(rec)
            cur = latest.get((run_id, key))
            if cur is None or (step, ts) >= (cur[2], cur[3]):
                latest[(run_id, key)] = rec
        # One lock order, so concurrent batches touching the same keys never deadlock.
        names = ("run_id", "key", "step", "ts", "value", "is_nan")
        ordered = [dict(zip(names, latest[k], strict=True)) for k in sorted(latest)]

        def write(conn: Connection) -> bool:
            claim = (_upsert(conn, metric_batches).on_conflict_do_nothing(index_elements=["batch_id"])
                     .returning(metric_batches.c.batch_id))
            claimed = conn.execute(claim, {"batch_id": batch_id, "rows": len(records), "ts": now_ms(),
                                           "user": current_user()}).first()
            if claimed is None:  # a replay of a batch that already committed
                if also is not None:
                    also(conn)
                return False
            _bulk_insert_metrics(conn, records)
            stmt = _upsert(conn, latest_metrics)
            ex = stmt.excluded
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={"step": ex.step, "ts": ex.ts, "value": ex.value, "is_nan": ex.is_nan},
                where=(ex.step > latest_metrics.c.step)
                | ((ex.step == latest_metrics.c.step) & (ex.ts >= latest_metrics.c.ts)),
            ), ordered)
            if also is not None:
                also(conn)
            crash_point("metrics.before_commit")
            return True

        return self.store.transact(write)

    def history(self, run_id: str, key: str) -> list[dict]:
        """Every value of `key`, by step then time (read through the driver: histories are long)."""
        mark = "?" if self.store.dialect == "sqlite" else "%s"
        sql = (f'SELECT step, ts, value, is_nan FROM metrics WHERE run_id = {mark} AND "key" = {mark} '
               "ORDER BY step, ts, id")
        with self.store.read() as conn:
            rows = conn.exec_driver_sql(sql, (run_id, key)).fetchall()
        return [{"step": s, "timestamp": t, "value": math.nan if n else v} for s, t, v, n in rows]

    def keys(self, run_id: str) -> list[str]:
        with self.store.read() as conn:
            return list(conn.execute(
                select(latest_metrics.c.key).where(latest_metrics.c.run_id == run_id).order_by(latest_metrics.c.key)
            ).scalars())


class RunArtifactRepo:
    """Run artifacts: path -> blob digest, with a blob reference in the same transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, run_id: str, path: str, digest: str, size: int, is_dir: bool) -> None:
        row = {"run_id": run_id, "path": path, "digest": digest, "size": size, "is_dir": is_dir,
               "ts": now_ms(), "user": current_user()}

        def write(conn: Connection) -> None:
            stmt = _upsert(conn, run_artifacts)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["run_id", "path"],
                set_={c: stmt.excluded[c] for c in ("digest", "size", "is_dir", "ts", "user")},
            ), row)
            BlobRefRepo.add_in(conn, [digest], "run", run_id)

        self.store.transact(write)

    def list(self, run_id: str) -> list[dict]:
        a = run_artifacts.c
        with self.store.read() as conn:
            rows = conn.execute(
                select(a.path, a.digest, a.size, a.is_dir).where(a.run_id == run_id).order_by(a.path)
            ).mappings().all()
        return [dict(r) for r in rows]


_METRIC_COLUMNS = '(run_id, "key", step, ts, value, is_nan)'


def _bulk_insert_metrics(conn: Connection, records: list[tuple]) -> None:
    """`(run_id, key, step, ts, value, is_nan)` tuples into `metrics`, inside the caller's transaction."""
    if not records:
        return
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection  # psycopg, in this same transaction
        with driver.cursor() as cur, cur.copy(f"COPY metrics {_METRIC_COLUMNS} FROM STDIN") as copy:
            for rec in records:
                copy.write_row(rec)
        return
    conn.exec_driver_sql(f"INSERT INTO metrics {_METRIC_COLUMNS} VALUES (?, ?, ?, ?, ?, ?)", records)


__all__ = [
    "experiments", "runs", "params", "tags", "metrics", "latest_metrics", "metric_batches", "run_artifacts",
    "environments", "ExperimentRepo", "RunRepo", "ParamRepo", "TagRepo", "MetricRepo", "RunArtifactRepo",
    "EnvironmentRepo", "Clause", "OrderBy", "status_expr", "ATTRIBUTE_KEYS", "NUMERIC_ATTRIBUTES",
]
