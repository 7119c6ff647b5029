"""The prediction-log writer: requests (or a batch of them, as one entry) append in O(1) and never
block; a background thread turns what piled up into parquet files every 10 s or 10,000 rows, and on
shutdown.

Queued rows are kept column by column (`Rows`: a list per column, not an object per request), so
the flush converts a few long lists in C instead of walking 10,000 entries in Python while holding
the GIL, and the cyclic GC sees a handful of lists instead of every request's dict and tuple while
they wait (measured: ~190 collections per 20,000 requests otherwise, each scanning what is queued).

The queue is bounded in rows: past the bound, new rows are dropped and counted (`dropped`), so a
slow or unreachable store never slows a response. Files go through `store/serving.py` (the schema
and the index live there); with no store (a bundle served air-gapped) files are written unindexed
under the artifact URI and indexed on first read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FLUSH_ROWS = 10_000
FLUSH_SECONDS = 10.0
QUEUE_ROWS = 200_000


@dataclass(frozen=True)
class LogTarget:
    """What a group of log rows shares: the answering model and how to type its columns."""

    model: str
    version: int | None
    deployment: str
    columns: tuple[str, ...]
    arrow_types: tuple[Any, ...]  # pyarrow types of the input columns (None = infer)
    proba_columns: tuple[str, ...]  # "proba_<class>" names, empty for regressors


class PredictionLogger:
    """Buffered, bounded writer of prediction-log rows.

    `log(...)` (one request) and `log_block(...)` (a batch) are called on the hot path; `close()`
    flushes and stops. `rows_logged + dropped` always equals the rows passed in once `close()` returns.
    """

    def __init__(self, write: Callable[[Any], None] | None, *, flush_rows: int = FLUSH_ROWS,
                 flush_seconds: float = FLUSH_SECONDS, queue_rows: int = QUEUE_ROWS) -> None:
        self._write = write
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.queue_rows = queue_rows
        self._pending: dict[LogTarget, Rows] = {}
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self.rows_logged = 0
        self.dropped = 0
        self.files_written = 0
        self.on_drop: Callable[[int], None] | None = None
        self.on_write: Callable[[int], None] | None = None
        self._thread: threading.Thread | None = None
        if write is not None:
            self._thread = threading.Thread(target=self._run, name="mloop-prediction-log", daemon=True)
            self._thread.start()

    # -- hot path -----------------------------------------------------------------------------
    def log(self, target: LogTarget, request_id: str, ts_ms: int, latency_ms: float, columns: dict,
            n: int, prediction: np.ndarray, proba: np.ndarray | None) -> bool:
        """Queue the `n` rows of one request; False (and counted as dropped) when the queue is full."""
        return self._queue(target, request_id, ts_ms, latency_ms, columns, n, prediction, proba)

    def log_block(self, target: LogTarget, request_ids: list[str], ts_ms: int, latencies_ms: list[float],
                  columns: dict, n: int, prediction: np.ndarray, proba: np.ndarray | None) -> bool:
        """Queue `n` rows of several requests answered together (a batch) as one entry: one request
        id and latency per row, the batch's columns and outputs as they are."""
        return self._queue(target, request_ids, ts_ms, latencies_ms, columns, n, prediction, proba)

    def _queue(self, target: LogTarget, ids: str | list[str], ts_ms: int, latency: float | list[float],
               columns: dict, n: int, prediction: np.ndarray, proba: np.ndarray | None) -> bool:
        if self._write is None:
            return False
        with self._lock:
            if self._stop or self._pending_rows + n > self.queue_rows:
                self.dropped += n
                if self.on_drop is not None:
                    self.on_drop(n)
                return False
            rows = self._pending.get(target)
            if rows is None:
                rows = self._pending[target] = Rows(target)
            try:
                rows.add(ids, ts_ms, latency, columns, n, prediction, proba)
            except Exception:  # noqa: BLE001 - a row the log cannot hold must not fail its response
                log.exception("could not queue %d prediction-log rows of %s/%s; counted as dropped",
                              n, target.model, target.version)
                self.dropped += n
                if self.on_drop is not None:
                    self.on_drop(n)
                return False
            self._pending_rows += n
            if self._pending_rows >= self.flush_rows:
                self._wake.notify()
        return True

    # -- background ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                deadline = time.monotonic() + self.flush_seconds
                while not self._stop and self._pending_rows < self.flush_rows:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                batch, self._pending, self._pending_rows = self._pending, {}, 0
                stopping = self._stop
            if batch:
                self._flush(batch)
            if stopping:
                return

    def _flush(self, batch: dict[LogTarget, Rows]) -> None:
        for target, pending in batch.items():
            try:
                table = pending.table()
                self._write(table)
            except Exception:  # the log must never take the server down; count and say why
                log.exception("could not write %d prediction-log rows of %s/%s; counted as dropped",
                              pending.n, target.model, target.version)
                with self._lock:
                    self.dropped += pending.n
                if self.on_drop is not None:
                    self.on_drop(pending.n)
                continue
            with self._lock:
                self.rows_logged += pending.n
                self.files_written += 1
            if self.on_write is not None:
                self.on_write(pending.n)

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything queued so far now (tests, demo); returns when it is written."""
        with self._lock:
            batch, self._pending, self._pending_rows = self._pending, {}, 0
        if batch:
            self._flush(batch)

    def close(self, timeout: float = 60.0) -> tuple[int, int]:
        """Stop the thread after a final flush; returns `(rows_logged, dropped)`."""
        with self._lock:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.rows_logged, self.dropped


def request_ids(request_id: str, n: int) -> list[str]:
    """The log's request ids of a request's `n` rows: its id, or `<id>:<row>` for several rows."""
    if n == 1:
        return [request_id]
    return [f"{request_id}:{i}" for i in range(n)]


def _column_array(values: list, typ: Any) -> Any:
    import pyarrow as pa

    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([None if v is None else str(v) for v in values], pa.string())
    if typ is not None and arr.type != typ:
        try:
            arr = arr.cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            arr = pa.array([None if v is None else str(v) for v in values], pa.string())
    return arr


def _stacked(parts: list, ns: list[int], ndim: int, uniform: bool) -> np.ndarray:
    """The requests' output arrays end to end: `[total]` predictions or `[total, k]` probabilities
    (`uniform`: every part is already an array of that shape, as a model call's output slices are)."""
    if uniform:
        return np.concatenate(parts)
    if ndim == 1:
        return np.concatenate([np.asarray(p).reshape(-1) for p in parts])
    return np.concatenate([np.asarray(p, dtype="float64").reshape(n, -1) for p, n in zip(parts, ns, strict=True)])


class Rows:
    """Log rows of one target queued column by column; `table()` is the arrow table in the schema
    `store.serving.log_schema` describes."""

    def __init__(self, target: LogTarget) -> None:
        self.target = target
        self.n = 0
        self.request_ids: list[str] = []
        self.ts: list[int] = []
        self.latency: list[float] = []
        self.columns: dict[str, list] = {c: [] for c in target.columns}
        self.ns: list[int] = []
        self.predictions: list = []
        self.probas: list = []
        self._uniform = True  # every output part an array already shaped [n] / [n, k]

    def add(self, ids: str | list[str], ts_ms: int, latency: float | list[float], columns: dict, n: int,
            prediction: Any, proba: Any) -> None:
        """One request (an id and a latency) or a block of requests (an id and a latency per row);
        all or nothing: on an error the rows queued before are as they were."""
        entries = len(self.ns)
        try:
            self._add(ids, ts_ms, latency, columns, n, prediction, proba)
        except BaseException:
            for values in (self.request_ids, self.ts, self.latency, *self.columns.values()):
                del values[self.n:]
            for parts in (self.ns, self.predictions, self.probas):
                del parts[entries:]
            raise
        self.n += n

    def _add(self, ids: str | list[str], ts_ms: int, latency: float | list[float], columns: dict, n: int,
             prediction: Any, proba: Any) -> None:
        if type(ids) is str:
            if n == 1:
                self.request_ids.append(ids)
                self.latency.append(latency)
            else:
                self.request_ids.extend(request_ids(ids, n))
                self.latency.extend([latency] * n)
        else:
            self.request_ids.extend(ids)
            self.latency.extend(latency)
        if n == 1:
            self.ts.append(ts_ms)
        else:
            self.ts.extend([ts_ms] * n)
        for name, values in self.columns.items():
            part = columns[name]
            values.extend(part.tolist() if type(part) is np.ndarray else part)
        self.ns.append(n)
        self.predictions.append(prediction)
        self.probas.append(proba)
        if self._uniform and not (type(prediction) is np.ndarray and prediction.ndim == 1 and
                                  (proba is None or (type(proba) is np.ndarray and proba.ndim == 2))):
            self._uniform = False

    def table(self) -> Any:
        import pyarrow as pa

        target, total = self.target, self.n
        cols: dict[str, Any] = {
            "request_id": pa.array(self.request_ids, pa.string()),
            "ts": pa.array(np.asarray(self.ts, dtype="int64"), pa.timestamp("ms", tz="UTC")),
            "model": pa.array([target.model] * total, pa.string()),
            "version": pa.array([target.version] * total, pa.int64()),
            "deployment": pa.array([target.deployment] * total, pa.string()),
            "latency_ms": pa.array(np.asarray(self.latency, dtype="float64"), pa.float64()),
        }
        for c, typ in zip(target.columns, target.arrow_types, strict=True):
            cols[c] = _column_array(self.columns[c], typ)
        preds = _stacked(self.predictions, self.ns, 1, self._uniform)
        cols["prediction"] = pa.array(preds.tolist() if preds.dtype == object else preds)
        if target.proba_columns:
            proba = _stacked(self.probas, self.ns, 2, self._uniform).astype("float64", copy=False)
            for j, name in enumerate(target.proba_columns):
                cols[name] = pa.array(proba[:, j], pa.float64())
        return pa.table(cols)


def build_table(target: LogTarget, items: list[tuple]) -> Any:
    """The arrow table of log entries `(target, id(s), ts_ms, latency(ies), columns, n, prediction,
    proba)`, as the logger writes them."""
    rows = Rows(target)
    for item in items:
        rows.add(*item[1:])
    return rows.table()
