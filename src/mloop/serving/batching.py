"""Adaptive micro-batching (the server's default): concurrent requests are coalesced into one model
call on a worker thread (the event loop never runs the model) and each caller gets exactly its rows.

A batch is taken as soon as the worker thread is free, a few event-loop ticks after its first
request arrived (`SETTLE_TICKS`): every request parsed in that tick joins it, and so do those whose
bytes arrived meanwhile (each tick polls the sockets without waiting, so a lone caller loses only
microseconds). While the worker runs one batch the next one fills, so under load batches grow by
themselves (up to `max_batch` rows). With `max_latency_ms > 0`, a batch that follows a shared batch
(a sign of load) may wait up to that long for more rows before it is taken. It pays when the model's
per-call cost dominates its per-row cost (scikit-learn: 0.3-0.7 ms per `predict_proba` call whatever
the rows) and several callers are concurrent; with one caller at a time it costs a thread hop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

from mloop.errors import ServiceUnavailable

# Loop ticks from a batch's first request to handing it to the worker. The next tick's socket poll
# reads the requests that arrived meanwhile, their tasks run (and join) in the tick after, and the
# batch goes one tick later: 3 (measured at c=16: 16 rows per call instead of ~7 with none).
SETTLE_TICKS = 3


class MicroBatcher:
    """Coalesce `submit(item, rows)` calls into `run(items) -> results` calls (results in item order).

    `run` executes on one worker thread; if it raises, every item of that batch gets the exception
    unless `run_one` is given, in which case items are retried alone so one bad item fails alone.
    """

    def __init__(self, run: Callable[[list], list], *, max_batch: int = 1024, max_latency_ms: float = 0.0,
                 queue_rows: int = 10_000, run_one: Callable[[Any], Any] | None = None) -> None:
        self._run = run
        self._run_one = run_one
        self.max_batch = max_batch
        self.max_latency = max_latency_ms / 1000.0
        self.queue_rows = queue_rows
        self._queue: list[tuple[Any, int, asyncio.Future]] = []
        self._queued_rows = 0
        self._busy = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_items = 1
        # One dedicated thread fed by a queue; it hands each result back with one
        # call_soon_threadsafe (cheaper than an executor future wrapped into an asyncio one).
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._worker, name="mloop-batch", daemon=True)
        self._thread.start()
        self.batches = 0
        self.on_batch: Callable[[int], None] | None = None

    async def submit(self, item: Any, rows: int) -> Any:
        return await self.enqueue(item, rows)

    def enqueue(self, item: Any, rows: int) -> asyncio.Future:
        """Queue `item` (`rows` rows) and return the future of its result (`submit` without the
        coroutine, for a caller that awaits the future itself)."""
        if self._queued_rows + rows > self.queue_rows:
            raise ServiceUnavailable(f"the batching queue is full ({self.queue_rows} rows); retry later")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.append((item, rows, fut))
        self._queued_rows += rows
        self._maybe_dispatch(loop)
        return fut

    def _maybe_dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._busy or not self._queue:
            return
        if self._queued_rows >= self.max_batch or self._last_items <= 1 or self.max_latency <= 0:
            self._dispatch(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_latency, self._timeout, loop)

    def _timeout(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if not self._busy and self._queue:
            self._dispatch(loop)

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._busy = True
        loop.call_soon(self._settle, loop, SETTLE_TICKS)

    def _settle(self, loop: asyncio.AbstractEventLoop, ticks: int) -> None:
        if ticks > 1:
            loop.call_soon(self._settle, loop, ticks - 1)
            return
        taken, rows = [], 0
        while self._queue and (not taken or rows + self._queue[0][1] <= self.max_batch):
            entry = self._queue.pop(0)
            taken.append(entry)
            rows += entry[1]
        self._queued_rows -= rows
        self._last_items = len(taken)
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(rows)
        self._work.put((loop, taken))

    def _worker(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            loop, taken = job
            try:
                results = self._call([t[0] for t in taken])
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                results = [exc] * len(taken)
            try:
                loop.call_soon_threadsafe(self._done, loop, taken, results)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return

    def _call(self, items: list) -> list:
        try:
            return self._run(items)
        except Exception as exc:
            if self._run_one is None or len(items) == 1:
                return [exc] * len(items)
        out = []
        for item in items:
            try:
                out.append(self._run_one(item))
            except Exception as exc:  # noqa: BLE001 - handed to that caller
                out.append(exc)
        return out

    def _done(self, loop: asyncio.AbstractEventLoop, taken: list, results: list) -> None:
        self._busy = False
        for (_, _, fut), result in zip(taken, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        self._maybe_dispatch(loop)

    def close(self) -> None:
        self._work.put(None)
        self._thread.join()
