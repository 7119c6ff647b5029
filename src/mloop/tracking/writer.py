"""The buffered metric writer and the heartbeat, on one daemon thread per process and store.

`add` costs an append under a lock. Rows commit every second or every 1,000 rows (the thread
waits on an Event that a full buffer sets), and on `flush()`, which commits in the caller's thread
and returns once the rows are committed, so `end_run` returns right after its final flush. Each
batch carries a client batch id: a batch replayed after a failed commit is applied once.

The thread exits when nothing is buffered and no run is beating, and `add`/`beat` start it again,
so idle stores cost no thread. After `fork()` the child forgets the parent's writers: the parent's
buffered rows are the parent's to commit.
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
from mloop.store.db import get_store
from mloop.store.tracking import MetricRepo, RunRepo

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from mloop.store.db import Store

log = logging.getLogger(__name__)

FLUSH_ROWS = 1000
FLUSH_SECONDS = 1.0
BATCH_ROWS = 5000  # rows per transaction when a flush has more

Row = tuple[str, str, float, int, int]  # run_id, key, value, step, ts


class MetricWriter:
    """Buffers metric rows for one store URI and commits them in batches; beats active runs' hearts."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._rows: list[Row] = []
        self._failed: list[tuple[str, list[Row]]] = []  # batches to replay with their ids
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._beating: dict[str, float] = {}  # run id -> heartbeat interval (s)
        self._last_beat = 0.0

    @property
    def store(self) -> Store:
        """The current store for this URI (re-opened if settings were reset)."""
        return get_store(self.uri)

    def add(self, row: Row) -> None:
        """Buffer one row (microseconds: an append under a lock)."""
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) == FLUSH_ROWS  # wake the thread once, as the buffer fills
            if self._thread is None:
                self._start_locked()
        if full:
            self._wake.set()

    def add_many(self, rows: list[Row]) -> None:
        with self._lock:
            before = len(self._rows)
            self._rows.extend(rows)
            full = before < FLUSH_ROWS <= len(self._rows)
            if self._thread is None:
                self._start_locked()
        if full:
            self._wake.set()

    def pending(self) -> int:
        """Rows buffered and not yet committed (including batches waiting for a replay)."""
        with self._lock:
            return len(self._rows) + sum(len(b) for _, b in self._failed)

    def flush(self, also: Callable[[Connection], object] | None = None) -> None:
        """Commit everything added so far; returns once it is committed (raises if it could not be).

        A batch that failed keeps its id and is replayed first next time; if its commit had in fact
        gone through, the store ignores the replay. `also(conn)` commits in the last batch's
        transaction (or its own when nothing is buffered): `end_run` ends the run with its metrics.
        """
        with self._flush_lock:
            with self._lock:
                rows, self._rows = self._rows, []
                batches = self._failed + [
                    (uuid.uuid4().hex, rows[i : i + BATCH_ROWS]) for i in range(0, len(rows), BATCH_ROWS)
                ]
                self._failed = []
            if not batches:
                if also is not None:
                    self.store.transact(also)
                return
            repo = MetricRepo(self.store)
            for n, (batch_id, batch) in enumerate(batches):
                try:
                    repo.write_batch(batch_id, batch, also if n == len(batches) - 1 else None)
                except BaseException:
                    with self._lock:
                        self._failed = batches[n:] + self._failed
                    raise
            crash_point("metrics.after_flush")

    def beat(self, run_id: str, interval_s: float) -> None:
        """Keep `run_id`'s heartbeat fresh until `stop_beating`."""
        with self._lock:
            shorter = interval_s < min([FLUSH_SECONDS, *self._beating.values()])
            self._beating[run_id] = interval_s
            if self._thread is None:
                self._start_locked()
            elif shorter:  # the thread is waiting on a longer interval: let it pick this one up
                self._wake.set()

    def stop_beating(self, run_id: str) -> None:
        with self._lock:
            self._beating.pop(run_id, None)
            idle = not (self._rows or self._failed or self._beating)
        if idle:  # let the thread see it has nothing left to do, and end
            self._wake.set()

    def _start_locked(self) -> None:
        # A wake left set for the previous thread (close() sets one) would make the new thread flush
        # at once instead of after its interval; every real wake-up request is set after this.
        self._wake.clear()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="mloop-metric-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                idle = not (self._rows or self._failed or self._beating)
                if idle or (self._stop and not self._rows):  # rows added after close() still go out
                    self._thread = None
                    self._stop = False
                    return
                interval = min([FLUSH_SECONDS, *self._beating.values()])
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # kept for replay; the next tick or the final flush retries
                log.warning("metric flush to %s failed; will retry", self.uri, exc_info=True)
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
            RunRepo(self.store).heartbeat(beating)
            self._last_beat = now
        except Exception:
            log.warning("heartbeat to %s failed", self.uri, exc_info=True)

    def close(self) -> None:
        """Flush, then let the thread end (stopping heartbeats); a later `add` or `beat` starts one."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._stop = True
            self._wake.set()


_writers: dict[str, MetricWriter] = {}
_writers_lock = threading.Lock()


def get_writer(store: Store | str) -> MetricWriter:
    """The process's writer for a store (or a store URI)."""
    uri = store if isinstance(store, str) else store.uri
    writer = _writers.get(uri)
    if writer is None:
        with _writers_lock:
            writer = _writers.get(uri)
            if writer is None:
                writer = _writers[uri] = MetricWriter(uri)
    return writer


def flush_all() -> None:
    """Commit every buffered metric of this process (at exit, and before handing a store over)."""
    for writer in list(_writers.values()):
        try:
            writer.flush()
        except Exception:
            log.error("could not flush metrics to %s", writer.uri, exc_info=True)


def _forget_in_child() -> None:
    # The parent's buffered rows, heartbeats and thread belong to the parent; locks may be held.
    global _writers_lock
    _writers.clear()
    _writers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(flush_all)
