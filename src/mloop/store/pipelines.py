"""Pipeline tables and repositories: pipeline runs, step runs (one row per DAG node and run) and the
step cache (cache key -> stored outputs, shared by every pipeline).

A pipeline run's id is the id of the tracking run it opens; a step's attempt opens a child run whose
row is inserted here in the same transaction as the step's RUNNING state (one commit per step start).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, select, update
from sqlalchemy.engine import Connection

from mloop.errors import NotFound
from mloop.store.db import Store
from mloop.store.lineage import BlobRefRepo, LineageRepo, _insert_ignore, lineage_edges
from mloop.store.schema import BigInteger, current_user, metadata, now_ms
from mloop.store.tracking import runs, status_expr

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),  # = the tracking run's id
    Column("pipeline", String(256), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("executor", String(300), nullable=False),
    Column("params", Text, nullable=False),  # canonical JSON of the bound parameters
    Column("inputs", Text, nullable=False),  # declared dataset inputs: {param: "datasets:/name@N"}
    Column("outputs", Text, nullable=False),  # {name: {"step", "output"}}
    Column("source", String(1000), nullable=True),  # FILE:NAME or module:attribute
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("user", String(200), nullable=False),
    Index(None, "pipeline", "start_ms"),
    Index(None, "start_ms"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("pipeline_run_id", String(32), ForeignKey("pipeline_runs.id"), primary_key=True),
    Column("name", String(256), primary_key=True),  # the node's name in the DAG (step, step-2, ...)
    Column("step", String(500), nullable=False),  # module.qualname of the step function
    Column("position", Integer, nullable=False),  # topological order
    Column("status", String(16), nullable=False),  # PENDING RUNNING COMPLETED CACHED FAILED SKIPPED
    Column("upstream", Text, nullable=False),  # JSON list of node names
    Column("params", Text, nullable=False),  # JSON: plain (non-lazy) arguments
    Column("inputs", Text, nullable=False),  # JSON: {argument: {"step", "output", "digest", "kind"}}
    Column("outputs", Text, nullable=False),  # JSON: {output: {"digest", "kind"}}
    Column("cache_key", String(80), nullable=True),
    Column("cached", Boolean, nullable=False),
    Column("run_id", String(32), nullable=True),  # the child tracking run (of the producing run when cached)
    Column("attempts", Integer, nullable=False),
    Column("start_ms", BigInteger, nullable=True),
    Column("end_ms", BigInteger, nullable=True),
    Column("logs_digest", String(80), nullable=True),
    Column("gates", Text, nullable=True),  # JSON list of gate reports produced in the step
    Column("error", Text, nullable=True),  # traceback of the last attempt
)

step_cache = Table(
    "step_cache",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("step", String(500), nullable=False),
    Column("outputs", Text, nullable=False),  # JSON: {output: {"digest", "kind"}}
    Column("pipeline_run_id", String(32), nullable=False),
    Column("node", String(256), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("gates", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
)

_JSON_COLS = {"params", "inputs", "outputs", "upstream"}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _decode(row: Any) -> dict:
    out = dict(row)
    for key in _JSON_COLS:
        if key in out and isinstance(out[key], str):
            out[key] = json.loads(out[key])
    if out.get("gates"):
        out["gates"] = json.loads(out["gates"])
    else:
        out["gates"] = []
    return out


def _output_digests(outputs: dict) -> list[str]:
    """Digests of outputs stored as blobs (small values kept inline in the record have none)."""
    return [o["digest"] for o in outputs.values() if o.get("digest") and "inline" not in o]


class PipelineRunRepo:
    """Pipeline runs and their step rows."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, row: dict, steps: list[dict], dataset_edges: Iterable[str] = ()) -> None:
        """Insert the pipeline run and every step (PENDING) in one transaction, with its input edges."""
        prow = {**row, **{k: _dumps(row[k]) for k in ("params", "inputs", "outputs")}}
        srows = [{**s, **{k: _dumps(s[k]) for k in ("params", "inputs", "outputs", "upstream")}} for s in steps]

        def write(conn: Connection) -> None:
            conn.execute(pipeline_runs.insert(), prow)
            if srows:
                conn.execute(step_runs.insert(), srows)
            for dv in dataset_edges:
                LineageRepo.add_in(conn, ("dataset_version", dv), "input", ("run", row["run_id"]))
                LineageRepo.add_in(conn, ("dataset_version", dv), "input", ("pipeline_run", row["id"]))

        self.store.transact(write)

    def start_step(self, pipeline_run_id: str, name: str, child: dict | None, attempts: int,
                   cache_key: str | None, inputs: dict, params: dict | None = None,
                   dataset_edges: Iterable[str] = ()) -> None:
        """Mark a step RUNNING and insert its child tracking run (same transaction)."""
        values = {"status": "RUNNING", "attempts": attempts, "cache_key": cache_key, "inputs": _dumps(inputs),
                  "params": _dumps(params or {}), "start_ms": now_ms(), "run_id": child["id"] if child else None,
                  "error": None}

        def write(conn: Connection) -> None:
            if child is not None:
                conn.execute(runs.insert(), child)
                for dv in dataset_edges:
                    LineageRepo.add_in(conn, ("dataset_version", dv), "input", ("run", child["id"]))
            conn.execute(update(step_runs).where(step_runs.c.pipeline_run_id == pipeline_run_id,
                                                 step_runs.c.name == name).values(**values))

        self.store.transact(write)

    def finish_step(self, pipeline_run_id: str, name: str, *, status: str, outputs: dict | None = None,
                    cached: bool = False, run_id: str | None = None, cache_key: str | None = None,
                    inputs: dict | None = None, params: dict | None = None, start_ms: int | None = None, end_ms: int | None = None,
                    logs_digest: str | None = None, gates: list | None = None, error: str | None = None,
                    cache_entry: dict | None = None, attempts: int | None = None) -> None:
        """Record a step's outcome; a successful cacheable step also writes its cache entry."""
        values: dict[str, Any] = {"status": status, "cached": cached, "end_ms": end_ms or now_ms()}
        for key, value in (("run_id", run_id), ("cache_key", cache_key), ("start_ms", start_ms),
                           ("logs_digest", logs_digest), ("error", error), ("attempts", attempts)):
            if value is not None:
                values[key] = value
        if outputs is not None:
            values["outputs"] = _dumps(outputs)
        if inputs is not None:
            values["inputs"] = _dumps(inputs)
        if params is not None:
            values["params"] = _dumps(params)
        if gates:
            values["gates"] = _dumps(gates)
        digests = _output_digests(outputs or {}) + ([logs_digest] if logs_digest else [])

        def write(conn: Connection) -> None:
            conn.execute(update(step_runs).where(step_runs.c.pipeline_run_id == pipeline_run_id,
                                                 step_runs.c.name == name).values(**values))
            if digests:
                BlobRefRepo.add_in(conn, digests, "step_run", f"{pipeline_run_id}/{name}")
            if cache_entry is not None:
                StepCacheRepo.put_in(conn, cache_entry)

        if self._batch is not None:
            self._batch.append(write)
        else:
            self.store.transact(write)

    _batch: list | None = None

    def batched(self) -> PipelineRunRepo:
        """A repository whose `finish_step` / `skip_steps` writes wait for `flush()` (one transaction
        for many steps: what keeps the per-step cost of a long in-process pipeline low)."""
        repo = PipelineRunRepo(self.store)
        repo._batch = []
        return repo

    def flush(self) -> None:
        """Commit the waiting writes of a batched repository in one transaction."""
        if not self._batch:
            return
        writes, self._batch = self._batch, []

        def write_all(conn: Connection) -> None:
            for write in writes:
                write(conn)

        try:
            self.store.transact(write_all)
        except BaseException:
            self._batch = writes + self._batch
            raise

    @property
    def pending(self) -> int:
        return len(self._batch or [])

    def skip_steps(self, pipeline_run_id: str, names: Iterable[str], reason: str) -> None:
        names = list(names)
        if not names:
            return

        def write(conn: Connection) -> None:
            conn.execute(update(step_runs).where(step_runs.c.pipeline_run_id == pipeline_run_id,
                                                 step_runs.c.name.in_(names)).values(status="SKIPPED", error=reason))

        if self._batch is not None:
            self._batch.append(write)
        else:
            self.store.transact(write)

    def finish(self, pipeline_run_id: str, status: str, *, outputs: dict | None = None, error: str | None = None,
               produced_by: Iterable[str] = ()) -> list[str]:
        """End a pipeline run; link the model versions its step runs produced (`produced` edges)."""
        values: dict[str, Any] = {"status": status, "end_ms": now_ms(), "error": error}
        if outputs is not None:
            values["outputs"] = _dumps(outputs)
        child_ids = list(produced_by)

        def write(conn: Connection) -> list[str]:
            conn.execute(update(pipeline_runs).where(pipeline_runs.c.id == pipeline_run_id).values(**values))
            found: list[str] = []
            if child_ids:
                e = lineage_edges.c
                rows = conn.execute(select(e.to_id).where(
                    e.from_kind == "run", e.from_id.in_(child_ids), e.relation == "produced",
                    e.to_kind == "model_version")).scalars().all()
                for mv in dict.fromkeys(rows):
                    LineageRepo.add_in(conn, ("pipeline_run", pipeline_run_id), "produced", ("model_version", mv))
                    found.append(mv)
            return found

        return self.store.transact(write)

    def get(self, pipeline_run_id: str) -> dict:
        """A pipeline run with its steps (in topological order); a prefix of the id is accepted."""
        p = pipeline_runs.c
        with self.store.read() as conn:
            row = conn.execute(self._select().where(p.id == pipeline_run_id)).mappings().first()
            if row is None and 4 <= len(pipeline_run_id) < 32:
                found = conn.execute(self._select().where(p.id.like(pipeline_run_id + "%")).limit(2)).mappings().all()
                row = found[0] if len(found) == 1 else None
            if row is None:
                raise NotFound(f"no pipeline run {pipeline_run_id!r}; list them with 'mloop pipeline runs'")
            out = self._finish_row(row)
            steps = conn.execute(select(step_runs).where(step_runs.c.pipeline_run_id == out["id"])
                                 .order_by(step_runs.c.position)).mappings().all()
        out["steps"] = [_decode(s) for s in steps]
        return out

    def list(self, pipeline: str | None = None, limit: int = 50) -> list[dict]:
        """Pipeline runs, newest first, with per-status step counts."""
        p = pipeline_runs.c
        query = self._select().order_by(p.start_ms.desc()).limit(limit)
        if pipeline:
            query = query.where(p.pipeline == pipeline)
        with self.store.read() as conn:
            rows = [self._finish_row(r) for r in conn.execute(query).mappings()]
            ids = [r["id"] for r in rows]
            counts: dict[str, dict[str, int]] = {i: {} for i in ids}
            if ids:
                s = step_runs.c
                for prid, status in conn.execute(select(s.pipeline_run_id, s.status).where(s.pipeline_run_id.in_(ids))):
                    counts[prid][status] = counts[prid].get(status, 0) + 1
        for r in rows:
            r["step_counts"] = counts[r["id"]]
        return rows

    @staticmethod
    def _select():  # noqa: ANN205
        return select(pipeline_runs, status_expr(now_ms()).label("tracking_status")).join(
            runs, runs.c.id == pipeline_runs.c.run_id)

    @staticmethod
    def _finish_row(row: Any) -> dict:
        out = _decode(row)
        out.pop("gates", None)
        tracking = out.pop("tracking_status")
        if out["status"] == "RUNNING" and tracking == "LOST":
            out["status"] = "LOST"
        return out

    def step(self, pipeline_run_id: str, name: str) -> dict:
        with self.store.read() as conn:
            row = conn.execute(select(step_runs).where(step_runs.c.pipeline_run_id == pipeline_run_id,
                                                       step_runs.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"pipeline run {pipeline_run_id} has no step {name!r}")
        return _decode(row)


class StepCacheRepo:
    """The step cache: one entry per cache key, shared across pipelines."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, key: str) -> dict | None:
        with self.store.read() as conn:
            row = conn.execute(select(step_cache).where(step_cache.c.key == key)).mappings().first()
        return _decode(row) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, dict]:
        keys = list(keys)
        if not keys:
            return {}
        with self.store.read() as conn:
            rows = conn.execute(select(step_cache).where(step_cache.c.key.in_(keys))).mappings().all()
        return {r["key"]: _decode(r) for r in rows}

    @staticmethod
    def put_in(conn: Connection, entry: dict) -> None:
        # A key names one computation, so an existing entry is as good as this one: keep it (stale
        # entries whose blobs were collected are deleted by the reader first).
        row = {**entry, "outputs": _dumps(entry["outputs"]), "gates": _dumps(entry["gates"]) if entry.get("gates") else None,
               "created_ms": now_ms(), "user": current_user()}
        _insert_ignore(conn, step_cache, [row])
        BlobRefRepo.add_in(conn, _output_digests(entry["outputs"]), "step_cache", entry["key"])

    def delete(self, key: str) -> None:
        self.store.transact(lambda conn: conn.execute(step_cache.delete().where(step_cache.c.key == key)))


__all__ = ["pipeline_runs", "step_runs", "step_cache", "PipelineRunRepo", "StepCacheRepo"]
