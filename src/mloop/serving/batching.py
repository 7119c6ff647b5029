"""Adaptive micro-batching (the server's default): concurrent requests are coalesced into one model
call and each caller gets exactly its rows.

A batch is taken as soon as the previous one is done: a lone caller never waits, and while one
batch runs the next one fills, so under load batches grow by themselves (up to `max_batch` rows).
With `max_latency_ms > 0`, a batch that follows a shared batch (a sign of load) may wait up to that
long for more rows before it is taken. It pays when the model's per-call cost dominates its per-row
cost (scikit-learn: 0.3-0.7 ms per `predict_proba` call whatever the rows) and several callers are
concurrent.

Where a batch runs depends on how long the model's calls take (a running average of the measured
calls, seeded by `call_estimate`, the model's call time measured at load):

- below `inline_below_ms` (2 ms by default), on the event loop itself: the batch is taken a few
  loop ticks after its first request arrived (`call_soon`, `SETTLE_TICKS` times), so every request
  parsed in that tick joins it, and so do those whose bytes arrived meanwhile (each tick polls the
  sockets without waiting; a lone caller loses microseconds). While the model runs, new requests
  pile up in the socket buffers and form the next batch. A fast call blocks the loop for less than
  a thread hop would cost (~50-300 µs of wake-ups per batch plus the GIL handover);
- otherwise on one dedicated worker thread, so a slow model never stalls the loop (health checks,
  metrics, parsing the next requests go on while it runs). The estimate starts there when unknown.

One slow call lifts the average past the bound at once (it weighs 1/2), so a model that turns slow
(a reload, big batches) moves to the thread after one batch; it moves back once calls are fast again.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from mloop.errors import ServiceUnavailable

INLINE_BELOW_MS = 2.0
# Loop ticks from an inline batch's first request to its model call. The next tick's socket poll
# reads the requests that arrived meanwhile, their tasks run (and join) in the tick after, and the
# call comes one tick later: 3 (measured at c=16: 16 rows per call instead of ~7 with 1).
SETTLE_TICKS = 3


class MicroBatcher:
    """Coalesce `submit(item, rows)` calls into `run(items) -> results` calls (results in item order).

    `run` executes on the event loop or on one worker thread (see the module doc); if it raises,
    every item of that batch gets the exception unless `run_one` is given, in which case items are
    retried alone so one bad item fails alone.
    """

    def __init__(self, run: Callable[[list], list], *, max_batch: int = 1024, max_latency_ms: float = 0.0,
                 queue_rows: int = 10_000, run_one: Callable[[Any], Any] | None = None,
                 inline_below_ms: float = INLINE_BELOW_MS, call_estimate: float | None = None) -> None:
        self._run = run
        self._run_one = run_one
        self.max_batch = max_batch
        self.max_latency = max_latency_ms / 1000.0
        self.queue_rows = queue_rows
        self.inline_below = inline_below_ms / 1000.0
        # running average of a model call's wall seconds; None: unknown (the thread until measured)
        self.call_seconds = call_estimate
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
        self.inline_batches = 0
        self.on_batch: Callable[[int], None] | None = None

    @property
    def inline(self) -> bool:
        """Whether the next batch runs on the event loop."""
        return self.call_seconds is not None and self.call_seconds < self.inline_below

    async def submit(self, item: Any, rows: int) -> Any:
        if self._queued_rows + rows > self.queue_rows:
            raise ServiceUnavailable(f"the batching queue is full ({self.queue_rows} rows); retry later")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.append((item, rows, fut))
        self._queued_rows += rows
        self._maybe_dispatch(loop)
        return await fut

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
        if self.inline:
            loop.call_soon(self._settle, loop, SETTLE_TICKS)
        else:
            self._work.put((loop, self._take()))

    def _take(self) -> list:
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
        return taken

    def _settle(self, loop: asyncio.AbstractEventLoop, ticks: int) -> None:
        if ticks > 1:
            loop.call_soon(self._settle, loop, ticks - 1)
        else:
            self._run_inline(loop)

    def _run_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        taken = self._take()
        self.inline_batches += 1
        try:
            results = self._call([t[0] for t in taken])
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
            results = [exc] * len(taken)
        self._done(loop, taken, results)

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
        t0 = time.perf_counter()
        try:
            return self._run(items)
        except Exception as exc:
            if self._run_one is None or len(items) == 1:
                return [exc] * len(items)
        finally:
            took = time.perf_counter() - t0
            last = self.call_seconds
            self.call_seconds = took if last is None else (last + took) / 2
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
