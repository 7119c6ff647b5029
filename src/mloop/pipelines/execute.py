"""Running one step attempt where the executor put it (this process, a child process, a Ray worker).

The attempt resumes its child tracking run (created by the runner), makes it the active run —
a plain `mloop.start_run()` inside the step returns it — loads its inputs from the artifact store,
calls the function, stores each output, captures stdout, stderr and log records, and returns a small
`StepResult` (digests, not data) to the runner.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import io
import logging
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from mloop.pipelines.dag import OutputRef

LOG_CAP = 1 << 20
_gate_reports: contextvars.ContextVar[list | None] = contextvars.ContextVar("mloop_gate_reports", default=None)


@dataclass
class StepTask:
    """Everything a worker needs for one attempt (small: inputs are digests)."""

    pipeline_run_id: str
    node: str
    step: Any  # the Step (pickled by value for workers that cannot import its module)
    args: dict[str, Any]  # bound arguments; OutputRefs already replaced by InputBlob
    child_run_id: str | None
    settings: dict[str, str]
    attempt: int = 1
    child_name: str | None = None  # in process: start the child run here, under the active pipeline run
    experiment: str | None = None


@dataclass(frozen=True)
class InputBlob:
    """An input read from the artifact store (or inline, for a small JSON value)."""

    kind: str
    digest: str
    entry: dict | None = None

    def as_entry(self) -> dict:
        return self.entry if self.entry is not None else {"kind": self.kind, "digest": self.digest}


@dataclass
class StepResult:
    """What an attempt returns: output digests and the captured logs, or the error."""

    ok: bool
    outputs: dict[str, dict] = field(default_factory=dict)
    start_ms: int = 0
    end_ms: int = 0
    logs_digest: str | None = None
    gates: list = field(default_factory=list)
    error_type: str | None = None
    error_message: str | None = None
    traceback: str | None = None
    exception: BaseException | None = None
    worker_lost: bool = False  # the worker died (killed, out of memory): always worth a retry
    child_run_id: str | None = None


def record_gate(report: dict) -> None:
    """Called by `mloop.gate` so the step's record and `mloop ci` see every gate it applied."""
    reports = _gate_reports.get()
    if reports is not None:
        reports.append(report)


def _ensure_settings(settings: dict[str, str]) -> None:
    from mloop.config import configure, get_settings

    current = get_settings()
    if current.tracking_uri != settings["tracking_uri"] or current.artifact_uri != settings["artifact_uri"]:
        configure(tracking_uri=settings["tracking_uri"], artifact_uri=settings["artifact_uri"],
                  home=settings.get("home"))


class _Tee(io.TextIOBase):
    def __init__(self, stream: Any, sink: io.StringIO) -> None:
        self._stream = stream
        self._sink = sink

    def write(self, text: str) -> int:
        if self._sink.tell() < LOG_CAP:
            self._sink.write(text)
        try:
            return self._stream.write(text)
        except Exception:  # noqa: BLE001  (a closed terminal must not fail the step)
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.flush()


@contextlib.contextmanager
def capture_logs():  # noqa: ANN201
    """Copy stdout, stderr and log records (INFO and up) into a buffer while the step runs."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, sink), _Tee(err, sink)
    try:
        yield sink
    finally:
        sys.stdout, sys.stderr = out, err
        root.removeHandler(handler)
        root.setLevel(old_level)


def run_task(task: StepTask) -> StepResult:
    """Run one attempt; never raises for the step's own errors (they come back in the result)."""
    from mloop.store.schema import now_ms

    _ensure_settings(task.settings)
    start = now_ms()
    child = None
    reports: list = []
    token = _gate_reports.set(reports)
    try:
        with capture_logs() as sink:
            try:
                from mloop.tracking import start_run

                if task.child_run_id is not None:  # created by the runner (another process)
                    child = start_run(run_id=task.child_run_id, nested=True)
                elif task.child_name is not None:  # in process: a child of the active pipeline run
                    child = start_run(task.experiment, name=task.child_name, nested=True)
                if child is not None:
                    child._adopts_plain_start = True
                args = _load_inputs(task.args)
                bound = inspect.BoundArguments(task.step.signature, args)
                value = task.step.fn(*bound.args, **bound.kwargs)
                outputs = _store_outputs(task, value)
            except BaseException as exc:  # noqa: BLE001  (KeyboardInterrupt too: the record must say so)
                tb = traceback.format_exc()
                logs = _put_logs(sink.getvalue())
                status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
                _end_child(child, status, tb)
                if isinstance(exc, KeyboardInterrupt):
                    raise
                return StepResult(ok=False, start_ms=start, end_ms=now_ms(), logs_digest=logs, gates=reports,
                                  error_type=type(exc).__name__, error_message=str(exc), traceback=tb,
                                  exception=exc, child_run_id=child.id if child is not None else None)
        logs = _put_logs(sink.getvalue())
        _end_child(child, "FINISHED", None)
        return StepResult(ok=True, outputs=outputs, start_ms=start, end_ms=now_ms(), logs_digest=logs,
                          gates=reports, child_run_id=child.id if child is not None else None)
    finally:
        _gate_reports.reset(token)


def _load_inputs(args: dict[str, Any]) -> dict[str, Any]:
    from mloop.pipelines import materialize

    cache: dict[str, Any] = {}

    def load(value: Any) -> Any:
        if isinstance(value, InputBlob):
            if value.digest not in cache:
                cache[value.digest] = materialize.load(value.as_entry(), trust=True)
            return cache[value.digest]
        if isinstance(value, list):
            return [load(v) for v in value]
        if isinstance(value, tuple) and not isinstance(value, str):
            items = [load(v) for v in value]
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        if isinstance(value, dict):
            return {k: load(v) for k, v in value.items()}
        return value

    return {k: load(v) for k, v in args.items()}


def _store_outputs(task: StepTask, value: Any) -> dict[str, dict]:
    from mloop.errors import InvalidInput
    from mloop.pipelines import materialize

    step = task.step
    if not step.multiple:
        return {"output": materialize.save(value)}
    names = step.outputs
    if isinstance(value, dict) and set(value) == set(names):
        parts = [value[n] for n in names]
    elif isinstance(value, tuple | list) and len(value) == len(names):
        parts = list(value)
    else:
        got = f"{type(value).__name__} of length {len(value)}" if isinstance(value, tuple | list) else type(value).__name__
        raise InvalidInput(f"step {task.node!r} declares outputs {list(names)} but returned {got}; return a tuple "
                           f"of {len(names)} values (or a dict with those keys)")
    return {n: materialize.save(p) for n, p in zip(names, parts, strict=True)}


def _put_logs(text: str) -> str | None:
    if not text:
        return None
    from mloop.artifacts import get_blob_store

    try:
        return get_blob_store().put_bytes(text.encode("utf-8", "replace")[:LOG_CAP])
    except Exception:  # noqa: BLE001  (losing the logs must not hide the step's own outcome)
        logging.getLogger(__name__).warning("could not store the step's logs", exc_info=True)
        return None


def _end_child(child: Any, status: str, error: str | None) -> None:
    if child is None:
        return
    try:
        child.end(status, error[-20000:] if error else None)
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).warning("could not end the step's run %s", child.id, exc_info=True)


__all__ = ["InputBlob", "OutputRef", "StepResult", "StepTask", "record_gate", "run_task"]
