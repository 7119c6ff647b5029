"""Serving records: deployments, the prediction-log file index, feedback labels, and reading the log.

The prediction log is parquet files written once with `put_named` under
`predictions/<model>/<yyyy-mm-dd>/<hh>/<ts>-<pid>-<uuid>.parquet` (DESIGN.md "Prediction log"), each
indexed here by model, version, time range, rows and digest. Monitoring and the feature store read
the log through `read_predictions(model, start, end)` without importing `serving/`; files written with
no store (a bundle served air-gapped) are indexed on first read.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Index, Integer, String, Table, Text, and_, func, select, update
from sqlalchemy.engine import Connection

from mloop.errors import InvalidInput, NotFound
from mloop.store.db import Store
from mloop.store.lineage import LineageRepo, _insert_ignore
from mloop.store.schema import BigId, BigInteger, current_user, metadata, now_ms

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.artifacts.blobs import BlobStore

# Columns every prediction-log row has, in this order, before the input features and the outputs.
RESERVED = ("request_id", "ts", "model", "version", "deployment", "latency_ms", "prediction")
PROBA_PREFIX = "proba_"
LOG_PREFIX = "predictions"

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("model_uri", String(500), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("workers", Integer, nullable=False),
    Column("options", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("stop_ms", BigInteger, nullable=True),
    Column("rows_logged", BigInteger, nullable=False),
    Column("dropped", BigInteger, nullable=False),
    Column("user", String(200), nullable=False),
    Index(None, "model", "start_ms"),
)

prediction_files = Table(
    "prediction_files",
    metadata,
    Column("key", String(1000), primary_key=True),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("deployment", String(64), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index(None, "model", "start_ms"),
    Index(None, "model", "end_ms"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", String(200), nullable=False),
    Column("label", Text, nullable=False),  # JSON-encoded value (number, string or bool)
    Column("ts", BigInteger, nullable=False),
    Column("deployment", String(64), nullable=True),
    Column("user", String(200), nullable=False),
    Index(None, "request_id"),
    Index(None, "ts"),
)


# -- deployments ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Deployment:
    """One `mloop serve`: what it served, where, when, and how many log rows it wrote or dropped."""

    id: str
    model_uri: str
    model: str
    version: int | None
    host: str
    port: int
    pid: int
    workers: int
    options: dict
    status: str
    start_ms: int
    stop_ms: int | None
    rows_logged: int
    dropped: int
    user: str


def _deployment(row: Any) -> Deployment:
    data = dict(row)
    data["options"] = json.loads(data["options"] or "{}")
    return Deployment(**data)


class DeploymentRepo:
    """Deployment rows; `start` also writes the `served` lineage edge model version -> deployment."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self, *, model_uri: str, model: str, version: int | None, host: str, port: int,
              workers: int = 1, options: dict | None = None, deployment_id: str | None = None) -> Deployment:
        dep_id = deployment_id or uuid.uuid4().hex
        row = {
            "id": dep_id, "model_uri": model_uri, "model": model, "version": version, "host": host,
            "port": port, "pid": os.getpid(), "workers": workers, "options": json.dumps(options or {}),
            "status": "running", "start_ms": now_ms(), "stop_ms": None, "rows_logged": 0, "dropped": 0,
            "user": current_user(),
        }

        def write(conn: Connection) -> None:
            conn.execute(deployments.insert().values(**row))
            if version is not None:
                LineageRepo.add_in(conn, ("model_version", f"{model}/{version}"), "served", ("deployment", dep_id))

        self.store.transact(write)
        return self.get(dep_id)

    def set_port(self, deployment_id: str, port: int) -> None:
        """Record the port actually bound (`--port 0` picks one after the row is written)."""
        self.store.transact(lambda c: c.execute(
            update(deployments).where(deployments.c.id == deployment_id).values(port=port)))

    def add_counts(self, deployment_id: str, rows_logged: int, dropped: int) -> None:
        """Add one worker's log counts (each worker adds its own at shutdown)."""
        t = deployments
        self.store.transact(lambda c: c.execute(
            update(t).where(t.c.id == deployment_id).values(
                rows_logged=t.c.rows_logged + rows_logged, dropped=t.c.dropped + dropped)))

    def stop(self, deployment_id: str, status: str = "stopped") -> None:
        t = deployments
        self.store.transact(lambda c: c.execute(
            update(t).where(t.c.id == deployment_id).values(stop_ms=now_ms(), status=status)))

    def get(self, deployment_id: str) -> Deployment:
        with self.store.read() as conn:
            row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).mappings().first()
        if row is None:
            raise NotFound(f"no deployment {deployment_id!r}")
        return _deployment(row)

    def list(self, model: str | None = None, limit: int = 100) -> list[Deployment]:
        q = select(deployments).order_by(deployments.c.start_ms.desc()).limit(limit)
        if model is not None:
            q = q.where(deployments.c.model == model)
        with self.store.read() as conn:
            return [_deployment(r) for r in conn.execute(q).mappings()]


# -- feedback ---------------------------------------------------------------------------------
class FeedbackRepo:
    """Labels that arrive after the prediction: rows `request_id, label, ts`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, items: Sequence[tuple[str, Any]], *, deployment: str | None = None,
            ts: int | None = None) -> int:
        """Store `(request_id, label)` pairs; returns how many."""
        stamp, user = ts if ts is not None else now_ms(), current_user()
        rows = []
        for request_id, label in items:
            if not isinstance(request_id, str) or not request_id:
                raise InvalidInput(f"feedback request_id must be a non-empty string, got {request_id!r}")
            if not isinstance(label, str | int | float | bool) or label is None:
                raise InvalidInput(f"feedback label must be a number, string or bool, got {label!r}")
            rows.append({"request_id": request_id[:200], "label": json.dumps(label), "ts": stamp,
                         "deployment": deployment, "user": user})
        if rows:
            self.store.transact(lambda c: c.execute(feedback.insert(), rows))
        return len(rows)

    def read(self, start: Any = None, end: Any = None) -> pa.Table:
        """Feedback rows in `[start, end)` as a table `request_id, label, ts` (ts UTC)."""
        import pyarrow as pa

        q = select(feedback.c.request_id, feedback.c.label, feedback.c.ts).order_by(feedback.c.ts, feedback.c.id)
        lo, hi = _to_ms(start), _to_ms(end)
        if lo is not None:
            q = q.where(feedback.c.ts >= lo)
        if hi is not None:
            q = q.where(feedback.c.ts < hi)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        labels = [json.loads(r[1]) for r in rows]
        return pa.table({
            "request_id": pa.array([r[0] for r in rows], pa.string()),
            "label": _label_array(labels),
            "ts": pa.array([r[2] for r in rows], pa.timestamp("ms", tz="UTC")),
        })


def _label_array(labels: list) -> pa.Array:
    import pyarrow as pa

    kinds = {type(v) for v in labels}
    if kinds <= {bool}:
        return pa.array(labels, pa.bool_())
    if kinds <= {int}:
        return pa.array(labels, pa.int64())
    if kinds <= {int, float}:
        return pa.array(labels, pa.float64())
    return pa.array([str(v) if not isinstance(v, str) else v for v in labels], pa.string())


# -- the prediction log -----------------------------------------------------------------------
def log_key(model: str, ts_ms: int, pid: int | None = None) -> str:
    """Where a log file starting at `ts_ms` goes (DESIGN.md layout)."""
    when = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    return (f"{LOG_PREFIX}/{model}/{when:%Y-%m-%d}/{when:%H}/"
            f"{ts_ms}-{pid if pid is not None else os.getpid()}-{uuid.uuid4().hex}.parquet")


def log_schema(inputs: Sequence[tuple[str, pa.DataType]], classes: Sequence | None,
               prediction_type: pa.DataType) -> pa.Schema:
    """The schema of a log file: reserved columns, one per input feature, then the outputs."""
    import pyarrow as pa

    for name, _ in inputs:
        if name in RESERVED or name.startswith(PROBA_PREFIX):
            raise InvalidInput(f"input column {name!r} uses a name reserved by the prediction log")
    fields = [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.int64()),
        pa.field("deployment", pa.string(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
        *(pa.field(name, typ) for name, typ in inputs),
        pa.field("prediction", prediction_type),
        *(pa.field(f"{PROBA_PREFIX}{c}", pa.float64()) for c in (classes or ())),
    ]
    return pa.schema(fields)


def _table_bytes(table: pa.Table) -> bytes:
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _time_range(table: pa.Table) -> tuple[int, int]:
    import pyarrow.compute as pc

    ts = table.column("ts").cast("int64")
    bounds = pc.min_max(ts).as_py()
    return int(bounds["min"]), int(bounds["max"])


def write_log_file(blobs: BlobStore, table: pa.Table) -> tuple[str, str, int, int]:
    """Write one log table write-once; returns `(key, digest, start_ms, end_ms)`. Rows only, no ML."""
    model = table.column("model")[0].as_py()
    start, end = _time_range(table)
    key = log_key(model, start)
    digest = blobs.put_named(key, _table_bytes(table))
    return key, digest, start, end


class PredictionLogRepo:
    """The file index of the prediction log, and reading the log back as one arrow table."""

    _swept: set[tuple[str, str, str]] = set()
    _sweep_lock = threading.Lock()

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    def write(self, table: pa.Table) -> str:
        """Write a table of log rows (one model, one version, one deployment) and index it."""
        key, digest, start, end = write_log_file(self.blobs, table)
        self.index(key, table, digest, start, end)
        return key

    def index(self, key: str, table: pa.Table, digest: str, start: int, end: int) -> None:
        versions = table.column("version").unique().to_pylist()
        row = {
            "key": key, "model": table.column("model")[0].as_py(),
            "version": versions[0] if len(versions) == 1 else None,
            "deployment": table.column("deployment")[0].as_py(),
            "start_ms": start, "end_ms": end, "rows": table.num_rows, "digest": digest, "created_ms": now_ms(),
        }
        self.store.transact(lambda c: _insert_ignore(c, prediction_files, [row]))

    def files(self, model: str, start: Any = None, end: Any = None) -> list[dict]:
        """Index rows of files that may hold rows of `model` in `[start, end)`, oldest first."""
        self.sweep(model)
        t = prediction_files
        q = select(t).where(t.c.model == model).order_by(t.c.start_ms, t.c.key)
        lo, hi = _to_ms(start), _to_ms(end)
        if lo is not None:
            q = q.where(t.c.end_ms >= lo)
        if hi is not None:
            q = q.where(t.c.start_ms < hi)
        with self.store.read() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def sweep(self, model: str, *, force: bool = False) -> int:
        """Index log files written with no store (bundles); done once per process and model."""
        import pyarrow.parquet as pq

        marker = (self.store.uri, self.blobs.uri, model)
        with self._sweep_lock:
            if marker in self._swept and not force:
                return 0
            keys = self.blobs.list_named(f"{LOG_PREFIX}/{model}/")
            with self.store.read() as conn:
                known = set(conn.execute(
                    select(prediction_files.c.key).where(prediction_files.c.model == model)).scalars())
            added = 0
            for key in keys:
                if key in known or not key.endswith(".parquet"):
                    continue
                with self.blobs.open_named(key) as fh:
                    data = fh.read()
                from mloop.artifacts.hashing import digest_of_bytes

                table = pq.read_table(io.BytesIO(data))
                if table.num_rows == 0:
                    continue
                start, end = _time_range(table)
                self.index(key, table, digest_of_bytes(data), start, end)
                added += 1
            self._swept.add(marker)
            return added

    def read(self, model: str, start: Any = None, end: Any = None,
             columns: Iterable[str] | None = None) -> pa.Table:
        """Every logged row of `model` with `start <= ts < end`, oldest file first."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        tables = []
        for f in self.files(model, start, end):
            with self.blobs.open_named(f["key"]) as fh:
                tables.append(pq.read_table(io.BytesIO(fh.read())))
        if not tables:
            return log_schema([], None, pa.float64()).empty_table()
        table = pa.concat_tables(tables, promote_options="permissive")
        lo, hi = _to_ms(start), _to_ms(end)
        ts = table.column("ts").cast("int64")
        mask = None
        if lo is not None:
            mask = pc.greater_equal(ts, lo)
        if hi is not None:
            upper = pc.less(ts, hi)
            mask = upper if mask is None else pc.and_(mask, upper)
        if mask is not None:
            table = table.filter(mask)
        if columns is not None:
            table = table.select(list(columns))
        return table

    def count(self, model: str) -> int:
        self.sweep(model)
        with self.store.read() as conn:
            value = conn.execute(select(func.coalesce(func.sum(prediction_files.c.rows), 0)).where(
                prediction_files.c.model == model)).scalar_one()
        return int(value)

    def forget_in(self, conn: Connection, keys: Sequence[str]) -> None:
        if keys:
            conn.execute(prediction_files.delete().where(and_(prediction_files.c.key.in_(list(keys)))))


def _to_ms(value: Any) -> int | None:
    """None, int/float ms, `datetime` (naive = UTC), `date`, ISO string or pandas Timestamp -> ms."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"expected a time, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidInput(f"cannot read {value!r} as a time; use ISO 8601 (2026-12-01T10:00)") from exc
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, dt.date):
        return int(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp() * 1000)
    raise InvalidInput(f"expected a time (datetime, ms or ISO string), got {value!r}")


def read_predictions(model: str, start: Any = None, end: Any = None, *,
                     columns: Iterable[str] | None = None) -> pa.Table:
    """The prediction log of `model` (a registered name) with `start <= ts < end`, as a pyarrow Table.

    >>> read_predictions("churn", "2026-12-01", "2026-12-02").num_rows  # doctest: +SKIP
    """
    from mloop.artifacts import get_blob_store
    from mloop.store.db import get_store

    return PredictionLogRepo(get_store(), get_blob_store()).read(model, start, end, columns)


def read_feedback(start: Any = None, end: Any = None) -> pa.Table:
    """Feedback labels `request_id, label, ts` with `start <= ts < end`."""
    from mloop.store.db import get_store

    return FeedbackRepo(get_store()).read(start, end)
