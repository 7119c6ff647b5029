"""The buffered metric writer and the heartbeat, on one daemon thread per process and store.

`add` costs an append under a lock. Rows commit every second or every 1,000 rows, and on `flush()`,
which writes in the caller's thread and returns when the rows are committed. Each batch carries a
client batch id: a batch replayed after a failed commit is applied once.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING

from mloop._faults import crash_point
from mloop.store.tracking import MetricRepo, RunRepo

if TYPE_CHECKING:
    from mloop.store.db import Store

log = logging.getLogger(__name__)

FLUSH_ROWS = 1000
FLUSH_SECONDS = 1.0

Row = tuple[str, str, float, int, int]  # run_id, key, value, step, ts


class MetricWriter:
    """Buffers metric rows for one store and commits them in batches; beats active runs' hearts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.metrics = MetricRepo(store)
        self.runs = RunRepo(store)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._rows: list[Row] = []
        self._failed: list[tuple[str, list[Row]]] = []  # batches to replay with their ids
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._beating: dict[str, float] = {}  # run id -> heartbeat interval (s)
        self._last_beat = 0.0

    def add(self, row: Row) -> None:
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= FLUSH_ROWS
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()

    def add_many(self, rows: list[Row]) -> None:
        with self._lock:
            self._rows.extend(rows)
            full = len(self._rows) >= FLUSH_ROWS
        if self._thread is None:
            self._start()
        if full:
            self._wake.set()

    def flush(self) -> None:
        """Commit everything added so far; returns once it is committed (raises if it could not be)."""
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
            batches = self._failed + [(uuid.uuid4().hex, rows[i : i + 5000]) for i in range(0, len(rows), 5000)]
            self._failed = []
            for n, (batch_id, batch) in enumerate(batches):
                try:
                    self.metrics.write_batch(batch_id, batch)
                except Exception:
                    self._failed.extend(batches[n:])
                    raise
            if batches:
                crash_point("metrics.after_flush")

    def beat(self, run_id: str, interval_s: float) -> None:
        """Keep `run_id`'s heartbeat fresh until `stop_beating`."""
        with self._lock:
            self._beating[run_id] = interval_s
        if self._thread is None:
            self._start()
        self._wake.set()

    def stop_beating(self, run_id: str) -> None:
        with self._lock:
            self._beating.pop(run_id, None)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="mloop-metric-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop:
            with self._lock:
                interval = min([FLUSH_SECONDS, *self._beating.values()])
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept for replay; the next tick or the final flush retries
                log.warning("metric flush to %s failed; will retry", self.store.uri, exc_info=True)
            self._heartbeat()

    def _heartbeat(self) -> None:
        with self._lock:
            beating = dict(self._beating)
        if not beating:
            return
        now = time.monotonic()
        if now - self._last_beat < min(beating.values()) * 0.9:
            return
        try:
            self.runs.heartbeat(beating)
            self._last_beat = now
        except Exception:
            log.warning("heartbeat to %s failed", self.store.uri, exc_info=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._stop = True
            self._wake.set()


_writers: dict[str, MetricWriter] = {}
_writers_lock = threading.Lock()


def get_writer(store: Store) -> MetricWriter:
    """The process's writer for a store."""
    writer = _writers.get(store.uri)
    if writer is None:
        with _writers_lock:
            writer = _writers.get(store.uri)
            if writer is None:
                writer = _writers[store.uri] = MetricWriter(store)
    return writer


def flush_all() -> None:
    """Commit every buffered metric of this process (at exit, and before a fork-free hand-off)."""
    for writer in list(_writers.values()):
        try:
            writer.flush()
        except Exception:
            log.error("could not flush metrics to %s at exit", writer.store.uri, exc_info=True)


def _forget_in_child() -> None:
    # The parent's buffered rows and thread belong to the parent.
    global _writers_lock
    _writers.clear()
    _writers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(flush_all)
