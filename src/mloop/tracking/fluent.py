"""The module-level tracking API: `start_run`, `active_run`, `log_*`, `end_run`, `get_run`, ...

The active run is a contextvar stack, so threads and asyncio tasks each see their own.
"""

from __future__ import annotations

import atexit
import contextvars
import threading
import uuid
from typing import Any

from mloop._faults import crash_point
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.store.db import get_store
from mloop.store.schema import current_user, now_ms
from mloop.store.tracking import (
    DEFAULT_EXPERIMENT,
    TERMINAL,
    ExperimentRepo,
    MetricRepo,
    RunRepo,
)
from mloop.tracking.run import Run, _check_key
from mloop.tracking.writer import get_writer

_stack: contextvars.ContextVar[tuple[Run, ...]] = contextvars.ContextVar("mloop_runs", default=())
_experiment: contextvars.ContextVar[str | None] = contextvars.ContextVar("mloop_experiment", default=None)
_open_runs: dict[str, Run] = {}  # every run this process started and has not ended (for atexit)
_open_lock = threading.Lock()


def active_run() -> Run | None:
    """The innermost run started in this context and not yet ended, or None."""
    stack = _stack.get()
    return stack[-1] if stack else None


def set_experiment(name: str) -> dict:
    """Make `name` the default experiment for runs started in this context (created if missing)."""
    exp = ExperimentRepo(get_store()).get_or_create(_check_name(name))
    _experiment.set(exp["name"])
    return exp


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InvalidInput(f"experiment name must be a non-empty string of at most 256 characters, got {name!r}")
    return name


def start_run(
    experiment: str | None = None,
    *,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    tags: dict[str, Any] | None = None,
    nested: bool = False,
    run_id: str | None = None,
) -> Run:
    """Start (or, with `run_id`, resume) a run; use it as a context manager or end it with `end_run()`.

    >>> with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:  # doctest: +SKIP
    ...     run.log_metric("auc", 0.91)
    """
    store = get_store()
    parent = active_run()
    if parent is not None and not nested:
        if getattr(parent, "_adopts_plain_start", False):
            handle = Run(parent._record, parent._store, active=True)
            handle._owner = False
            if params:
                handle.log_params(params)
            if tags:
                handle.set_tags(tags)
            return handle
        raise Conflict(
            f"run {parent.id} is already active; pass nested=True to start a child run, or end it first"
        )
    from mloop.config import get_settings

    heartbeat_s = get_settings().heartbeat_s
    runs = RunRepo(store)
    str_params = {_check_key("param", k): str(v) for k, v in (params or {}).items()}
    str_tags = {_check_key("tag", k): str(v) for k, v in (tags or {}).items()}
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 256):
        raise InvalidInput(f"run name must be a non-empty string of at most 256 characters, got {name!r}")
    if run_id is not None:
        record = runs.resume(run_id, int(heartbeat_s * 1000), str_params)
        run = Run(record, store, active=True)
        run.log_params(str_params)  # write-once as ever: a different value is a Conflict
        run.set_tags(str_tags)
    else:
        exp_name = experiment
        if exp_name is None:
            exp_name = _experiment.get() or (parent.experiment if parent else None) or DEFAULT_EXPERIMENT
        exp = ExperimentRepo(store).get_or_create(_check_name(exp_name))
        if parent is None:
            env_id, env, diff = _capture_environment()
        else:  # a child run shares its parent's environment
            env_id, env, diff = parent._record.get("environment_id"), None, None
        rid = uuid.uuid4().hex
        ts = now_ms()
        row = {
            "id": rid,
            "experiment_id": exp["id"],
            "name": name or f"run-{rid[:8]}",
            "status": "RUNNING",
            "parent_id": parent.id if parent is not None else None,
            "start_ms": ts,
            "end_ms": None,
            "heartbeat_ms": ts,
            "heartbeat_interval_ms": int(heartbeat_s * 1000),
            "user": current_user(),
            "environment_id": env_id,
            "lifecycle_stage": "active",
            "error": None,
        }
        runs.create(row, str_params, str_tags, environment=env)
        crash_point("run.after_create")
        run = Run({**row, "experiment": exp["name"], "params": str_params, "tags": str_tags, "metrics": {}},
                  store, active=True)
        if diff:
            try:
                run.log_bytes(diff, "environment/git.diff")
            except BaseException as exc:
                runs.set_status(rid, "FAILED", end_ms=now_ms(), error=f"could not store the git diff: {exc}")
                raise
    _stack.set((*_stack.get(), run))
    with _open_lock:
        _open_runs[run.id] = run
    get_writer(store).beat(run.id, heartbeat_s)
    return run


def _capture_environment() -> tuple[str, dict, bytes | None]:
    from mloop.tracking import environment

    return environment.capture()


def _end(run: Run, status: str, error: str | None = None) -> None:
    if status not in TERMINAL:
        raise InvalidInput(f"a run ends as one of {', '.join(TERMINAL)}, not {status!r}")
    writer = get_writer(run._store)
    end = now_ms()
    # The last metrics and the end commit together: whoever sees the run ended sees all its metrics.
    writer.flush(also=lambda conn: RunRepo.set_status_in(conn, run.id, status, end_ms=end, error=error))
    writer.stop_beating(run.id)
    run._record.update(status=status, end_ms=end, error=error)
    run._active = False
    stack = _stack.get()
    if run in stack:
        _stack.set(tuple(r for r in stack if r is not run))
    with _open_lock:
        _open_runs.pop(run.id, None)


def end_run(status: str = "FINISHED") -> None:
    """End the active run (no-op when none is active)."""
    run = active_run()
    if run is not None:
        run.end(status)


def _require_active() -> Run:
    run = active_run()
    if run is None:
        raise InvalidInput("no active run; start one with mloop.start_run()")
    return run


def log_param(key: str, value: Any) -> None:
    _require_active().log_param(key, value)


def log_params(values: dict[str, Any]) -> None:
    _require_active().log_params(values)


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
    _require_active().log_metric(key, value, step=step, timestamp=timestamp)


def log_metrics(values: dict[str, float], step: int | None = None, timestamp: int | None = None) -> None:
    _require_active().log_metrics(values, step=step, timestamp=timestamp)


def set_tag(key: str, value: Any) -> None:
    _require_active().set_tag(key, value)


def set_tags(values: dict[str, Any]) -> None:
    _require_active().set_tags(values)


def log_artifact(local_path: str, artifact_path: str | None = None) -> str:
    return _require_active().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None) -> list[str]:
    return _require_active().log_artifacts(local_dir, artifact_path)


def log_text(text: str, artifact_path: str) -> str:
    return _require_active().log_text(text, artifact_path)


def log_dict(data: dict, artifact_path: str) -> str:
    return _require_active().log_dict(data, artifact_path)


def log_figure(figure: Any, artifact_path: str) -> str:
    return _require_active().log_figure(figure, artifact_path)


def get_run(run_id: str) -> Run:
    """A run by id, fully loaded (params, latest metrics, tags)."""
    store = get_store()
    get_writer(store).flush()
    return Run(RunRepo(store).get(run_id), store)


def metric_history(run_id: str, key: str) -> list[dict]:
    """Every logged value of a metric: `[{"step", "timestamp", "value"}]`, by step then time."""
    store = get_store()
    get_writer(store).flush()
    runs = RunRepo(store)
    if not runs.exists(run_id):
        raise NotFound(f"no run {run_id!r}; list runs with 'mloop runs list'")
    return MetricRepo(store).history(run_id, key)


def delete_run(run_id: str) -> None:
    """Soft-delete a run (hidden from search; `restore_run` brings it back)."""
    RunRepo(get_store()).set_stage(run_id, "deleted")


def restore_run(run_id: str) -> None:
    """Bring a soft-deleted run back."""
    RunRepo(get_store()).set_stage(run_id, "active")


def delete_experiment(name: str) -> None:
    """Soft-delete an experiment: its runs leave searches that do not name it; no new runs start in it."""
    ExperimentRepo(get_store()).set_stage(name, "deleted")


def restore_experiment(name: str) -> None:
    """Bring a soft-deleted experiment back."""
    ExperimentRepo(get_store()).set_stage(name, "active")


def _end_open_runs_at_exit() -> None:
    # A script that dies of an uncaught exception leaves it in sys.last_value: its runs FAILED.
    import sys

    from mloop.tracking.run import exit_status

    last = getattr(sys, "last_value", None)
    status, error = exit_status(type(last), last, last.__traceback__) if last is not None else ("FINISHED", None)
    with _open_lock:
        runs = list(_open_runs.values())
    for run in reversed(runs):
        try:
            _end(run, status, error)
        except Exception:  # the store may already be gone at interpreter exit
            pass


atexit.register(_end_open_runs_at_exit)


def _forget_in_child() -> None:
    # A forked child starts with no active run: the parent's runs are the parent's to end.
    global _open_lock
    _open_runs.clear()
    _open_lock = threading.Lock()
    _stack.set(())


import os as _os  # noqa: E402

_os.register_at_fork(after_in_child=_forget_in_child)
