"""Executors: where step attempts run, behind one small protocol (submit with resources, wait, shutdown).

- `LocalExecutor()` runs each step in this process, one at a time (`executor="local"`);
- `LocalExecutor(processes=N)` runs independent steps in up to N forked processes at once
  (`executor="processes"` or `"processes:N"`); a step's `timeout=` needs this (or Ray);
- `RayExecutor` (`executor="ray"`, `"ray://host:10001"`) makes each step a Ray task.

The runner decides what is ready (dependencies, cache hits, retries); an executor only runs attempts.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol, runtime_checkable

from mloop.errors import InvalidInput
from mloop.pipelines.execute import StepResult, StepTask, run_task


@runtime_checkable
class Executor(Protocol):
    """Runs step attempts. `submit` returns a handle; `wait` returns the handles that finished
    (at least one, blocking until then); `result(handle)` is the StepResult; `shutdown` frees workers."""

    name: str
    supports_timeout: bool

    def submit(self, task: StepTask, *, resources: dict[str, Any], timeout: float | None) -> Any: ...

    def wait(self, handles: list[Any]) -> list[Any]: ...

    def result(self, handle: Any) -> StepResult: ...

    def shutdown(self) -> None: ...


class _Done:
    __slots__ = ("result",)

    def __init__(self, result: StepResult) -> None:
        self.result = result


class _Proc:
    __slots__ = ("task", "process", "conn", "deadline", "timeout", "result", "started")

    def __init__(self, task: StepTask, timeout: float | None) -> None:
        self.task = task
        self.process: Any = None
        self.conn: Any = None
        self.timeout = timeout
        self.deadline: float | None = None
        self.result: StepResult | None = None
        self.started = False


def _child_main(conn: Any, task: StepTask) -> None:  # runs in the forked process
    import pickle

    result = run_task(task)
    try:
        payload = pickle.dumps(result)
    except Exception:  # noqa: BLE001  (an unpicklable exception: keep its text)
        result.exception = None
        payload = pickle.dumps(result)
    conn.send_bytes(payload)
    conn.close()
    from mloop.tracking.writer import flush_all

    flush_all()
    os._exit(0)


class LocalExecutor:
    """In this process (`processes=0`), or in up to `processes` forked processes at once."""

    def __init__(self, processes: int = 0) -> None:
        if not isinstance(processes, int) or processes < 0:
            raise InvalidInput(f"processes must be a whole number >= 0, got {processes!r}")
        self.processes = processes
        self.supports_timeout = processes > 0
        self.in_process = processes == 0
        self.name = "local" if processes == 0 else f"processes:{processes}"
        self._queue: list[_Proc] = []
        self._running: list[_Proc] = []

    def submit(self, task: StepTask, *, resources: dict[str, Any], timeout: float | None) -> Any:
        if self.processes == 0:
            if timeout is not None:
                raise InvalidInput(f"step {task.node!r} sets timeout={timeout:g}, which needs a process; run with "
                                   "executor='processes' or 'ray'")
            return _Done(run_task(task))
        proc = _Proc(task, timeout)
        self._queue.append(proc)
        self._fill()
        return proc

    def _fill(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        while self._queue and len(self._running) < self.processes:
            proc = self._queue.pop(0)
            from mloop.tracking.writer import flush_all

            flush_all()  # buffered metrics belong to the parent; commit them before forking
            parent_conn, child_conn = ctx.Pipe(duplex=False)
            proc.process = ctx.Process(target=_child_main, args=(child_conn, proc.task), daemon=True)
            proc.process.start()
            child_conn.close()
            proc.conn = parent_conn
            proc.started = True
            proc.deadline = time.monotonic() + proc.timeout if proc.timeout else None
            self._running.append(proc)

    def wait(self, handles: list[Any]) -> list[Any]:
        done = [h for h in handles if isinstance(h, _Done) or (isinstance(h, _Proc) and h.result is not None)]
        if done:
            return done
        from multiprocessing.connection import wait as mp_wait

        while True:
            deadlines = [p.deadline for p in self._running if p.deadline is not None]
            limit = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            ready = mp_wait([p.conn for p in self._running] + [p.process.sentinel for p in self._running],
                            timeout=limit)
            finished: list[_Proc] = []
            for proc in list(self._running):
                if proc.conn in ready or proc.process.sentinel in ready:
                    proc.result = self._collect(proc)
                    finished.append(proc)
                elif proc.deadline is not None and time.monotonic() >= proc.deadline:
                    proc.process.kill()
                    proc.process.join()
                    proc.conn.close()
                    proc.result = StepResult(ok=False, error_type="TimeoutError",
                                             error_message=f"step {proc.task.node!r} timed out after {proc.timeout:g} s",
                                             traceback=None)
                    finished.append(proc)
            for proc in finished:
                self._running.remove(proc)
            self._fill()
            hit = [h for h in handles if isinstance(h, _Proc) and h.result is not None]
            if hit:
                return hit

    def _collect(self, proc: _Proc) -> StepResult:
        import pickle

        payload = None
        try:
            if proc.conn.poll():
                payload = proc.conn.recv_bytes()
        except (EOFError, OSError):
            payload = None
        proc.process.join()
        proc.conn.close()
        if payload is None:
            code = proc.process.exitcode
            return StepResult(ok=False, worker_lost=True, error_type="WorkerLost",
                              error_message=f"the process running step {proc.task.node!r} died (exit code {code})")
        return pickle.loads(payload)

    def result(self, handle: Any) -> StepResult:
        return handle.result

    def shutdown(self) -> None:
        for proc in self._running:
            if proc.process is not None and proc.process.is_alive():
                proc.process.kill()
                proc.process.join()
        self._running.clear()
        self._queue.clear()


def get_executor(spec: Any = None) -> Executor:
    """An executor from a name: local, processes[:N], ray, ray://host:port (default: MLOOP_EXECUTOR)."""
    if spec is None:
        from mloop.config import get_settings

        spec = get_settings().executor or "local"
    if isinstance(spec, Executor) and not isinstance(spec, str):
        return spec
    if not isinstance(spec, str):
        raise InvalidInput(f"executor must be a name (local, processes[:N], ray, ray://host:port) or an Executor, got {spec!r}")
    text = spec.strip()
    if text in ("local", "inprocess", "in-process"):
        return LocalExecutor()
    if text.startswith(("processes", "local:")):
        _, _, count = text.partition(":")
        if count in ("", "processes"):
            return LocalExecutor(processes=os.cpu_count() or 2)
        if not count.isdigit() or int(count) < 1:
            raise InvalidInput(f"executor {spec!r}: the process count must be a whole number >= 1")
        return LocalExecutor(processes=int(count))
    if text == "ray" or text.startswith("ray://") or text.startswith("ray:"):
        from mloop.pipelines.ray_executor import RayExecutor

        address = None if text == "ray" else (text if text.startswith("ray://") else text[len("ray:"):])
        return RayExecutor(address=address)
    raise InvalidInput(f"unknown executor {spec!r}; use local, processes[:N], ray, or ray://host:10001")


__all__ = ["Executor", "LocalExecutor", "get_executor"]
