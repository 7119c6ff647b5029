"""The Ray executor: each step attempt is a Ray task, with `resources` mapped to num_cpus / memory /
num_gpus. `executor="ray"` joins the cluster at `RAY_ADDRESS` when set, else starts a local one;
`"ray://host:10001"` joins an existing cluster through Ray Client. Modules the workers cannot import
(the project's own code) are pickled by value. With `ray://` the metadata and artifact stores must be
reachable from the workers, so an embedded SQLite store is refused before any step runs.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from mloop.errors import InvalidInput, ServiceUnavailable, missing
from mloop.pipelines.execute import StepResult, StepTask, run_task

log = logging.getLogger(__name__)
_remote_fn = None
_connected_to: str | None = None  # the cluster this process's Ray connection goes to
CLIENT_CONNECT_ATTEMPTS = 3


def _ray():  # noqa: ANN202
    try:
        import ray
    except ImportError as exc:
        raise missing("ray", "ray", "executor='ray'") from exc
    return ray


def _check_reachable(address: str) -> None:
    """A TCP connect to host:port first, so a wrong address fails fast with its name."""
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"Ray address {address!r} is not host:port (e.g. ray://head:10001 or 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise ServiceUnavailable(f"Ray cluster at {address!r} is unreachable: {exc}; check RAY_ADDRESS / the "
                                 "executor URI and that the cluster is running") from exc


def _reason(exc: BaseException) -> str:
    """A Ray Client error's cause: its message carries the server's traceback, whose last line says it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if len(lines) <= 1 else f"{lines[0]} {lines[-1]}"


class RayExecutor:
    """Steps as Ray tasks. `address`: None (RAY_ADDRESS or a new local cluster) or `ray://host:port`."""

    supports_timeout = True

    def __init__(self, address: str | None = None) -> None:
        self.address = address
        self.name = address or "ray"
        self._ray = _ray()
        self._started_here = False
        self._deadlines: dict[Any, float] = {}
        self._tasks: dict[Any, StepTask] = {}
        self._expired: set[Any] = set()

    def check_stores(self, settings: Any) -> None:
        """Refuse an embedded store with a remote cluster (its workers cannot reach this machine's files)."""
        if self.address and self.address.startswith("ray://"):
            if settings.tracking_uri.startswith("sqlite"):
                raise InvalidInput(
                    f"executor {self.address!r} runs steps on other machines, which cannot reach the embedded "
                    f"SQLite store {settings.tracking_uri}; set MLOOP_TRACKING_URI to a PostgreSQL URI (or use "
                    "executor='ray' for a cluster on this machine)"
                )
            if "://" not in settings.artifact_uri or settings.artifact_uri.startswith("file://"):
                log.warning("artifact store %s is a local folder; Ray workers on other machines cannot reach it",
                            settings.artifact_uri)

    def start(self) -> None:
        """Connect (or start a local cluster); an unreachable address is a ServiceUnavailable naming it."""
        ray = self._ray
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address and address not in ("auto", "local"):
            _check_reachable(address)
        global _connected_to
        if ray.is_initialized():
            if _connected_to is None:  # connected by the caller's own ray.init
                _connected_to = getattr(ray.get_runtime_context(), "gcs_address", None)
            if self.address and _connected_to is not None and self.address != _connected_to:
                # Ray keeps one connection per process: going on would run the steps on the other cluster.
                raise InvalidInput(f"this process is already connected to the Ray cluster at {_connected_to!r}, "
                                   f"so executor {self.address!r} cannot be joined from it; run that pipeline "
                                   f"from another process (or call ray.shutdown() first)")
            return
        # A Ray Client head starts a server process per connection; on a busy head that start can time
        # out ("Initialization failure from server"), and a new connection usually succeeds.
        attempts = CLIENT_CONNECT_ATTEMPTS if address and address.startswith("ray://") else 1
        for attempt in range(1, attempts + 1):
            try:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                         include_dashboard=False if not address else None,
                         runtime_env=None, logging_level=logging.WARNING, configure_logging=True)
                break
            except ConnectionError as exc:
                if attempt == attempts:
                    raise ServiceUnavailable(f"could not join the Ray cluster at {address!r} in {attempts} "
                                             f"attempts: {_reason(exc)}") from exc
                log.warning("joining the Ray cluster at %s failed (attempt %d of %d), retrying: %s",
                            address, attempt, attempts, _reason(exc))
            except Exception as exc:  # noqa: BLE001
                raise ServiceUnavailable(f"could not join the Ray cluster at {address or 'a new local cluster'!r}: "
                                         f"{exc}") from exc
        self._started_here = True
        _connected_to = address or "a new local cluster"

    def _function(self):  # noqa: ANN202
        global _remote_fn
        if _remote_fn is None:
            _remote_fn = self._ray.remote(max_retries=0)(_ray_entry)
        return _remote_fn

    def submit(self, task: StepTask, *, resources: dict[str, Any], timeout: float | None) -> Any:
        self.start()
        _pickle_project_by_value(task.step.fn)
        options: dict[str, Any] = {"num_cpus": resources.get("cpus", 1), "name": f"mloop:{task.node}"}
        if "memory" in resources:
            options["memory"] = int(resources["memory"])
        if "gpus" in resources:
            options["num_gpus"] = resources["gpus"]
        ref = self._function().options(**options).remote(task)
        self._tasks[ref] = task
        if timeout:
            import time

            self._deadlines[ref] = time.monotonic() + timeout
        return ref

    def wait(self, handles: list[Any]) -> list[Any]:
        import time

        ray = self._ray
        while True:
            pending = [h for h in handles if h in self._deadlines]
            limit = None
            if pending:
                limit = max(0.0, min(self._deadlines[h] for h in pending) - time.monotonic())
            done, _ = ray.wait(list(handles), num_returns=1, timeout=limit)
            if done:
                ready, _ = ray.wait(list(handles), num_returns=len(handles), timeout=0)
                return ready or done
            now = time.monotonic()
            expired = [h for h in pending if self._deadlines[h] <= now]
            for h in expired:
                ray.cancel(h, force=True)
            if expired:
                self._expired.update(expired)
                return expired

    def result(self, handle: Any) -> StepResult:
        ray = self._ray
        task = self._tasks.pop(handle, None)
        self._deadlines.pop(handle, None)
        if handle in self._expired:
            self._expired.discard(handle)
            node = task.node if task else "?"
            timeout = task.step.timeout if task else None
            return StepResult(ok=False, error_type="TimeoutError",
                              error_message=f"step {node!r} timed out after {timeout:g} s (its Ray task was cancelled)")
        try:
            return ray.get(handle)
        except Exception as exc:  # noqa: BLE001  (worker died, task cancelled, node lost)
            node = task.node if task else "?"
            return StepResult(ok=False, worker_lost=True, error_type=type(exc).__name__,
                              error_message=f"the Ray worker running step {node!r} failed: {str(exc)[:2000]}")

    def shutdown(self) -> None:
        self._deadlines.clear()
        self._tasks.clear()


def _ray_entry(task: StepTask) -> StepResult:
    result = run_task(task)
    if result.exception is not None:
        import cloudpickle

        try:
            cloudpickle.dumps(result.exception)
        except Exception:  # noqa: BLE001
            result.exception = None
    from mloop.tracking.writer import flush_all

    flush_all()
    return result


def _pickle_project_by_value(fn: Any) -> None:
    """Register the step's module, and the project modules it reaches, to be pickled by value."""
    import cloudpickle

    from mloop.pipelines.fingerprint import is_project_module

    module = sys.modules.get(getattr(fn, "__module__", ""))
    seen: set[str] = set()
    stack = [module] if module is not None else []
    while stack:
        mod = stack.pop()
        if mod is None or mod.__name__ in seen or mod.__name__ == "__main__":
            continue
        seen.add(mod.__name__)
        if mod.__name__.split(".")[0] == "mloop" or not is_project_module(mod):
            continue
        try:
            cloudpickle.register_pickle_by_value(mod)
        except (ValueError, TypeError):
            continue
        for value in list(vars(mod).values()):
            owner = value if isinstance(value, type(sys)) else sys.modules.get(getattr(value, "__module__", "") or "")
            if owner is not None and owner.__name__ not in seen:
                stack.append(owner)


__all__ = ["RayExecutor"]
