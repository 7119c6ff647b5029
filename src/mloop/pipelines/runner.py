"""Running a pipeline: bind and check parameters, resolve declared datasets, build the DAG, open the
tracking run, then walk the DAG — a cache hit reuses stored outputs, anything else becomes an attempt
on the executor — and record every step. A failed step is retried per its policy (a worker that died is
retried at least once); then its downstream steps are skipped and the run fails.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import GateFailed, InvalidInput, MloopError, StepFailed
from mloop.pipelines.dag import DAG, Node, OutputRef, refs_in, substitute
from mloop.pipelines.execute import InputBlob, StepResult, StepTask
from mloop.pipelines.fingerprint import CodeHasher, cache_key, canonical_json
from mloop.pipelines.language import DatasetRef, Pipeline

log = logging.getLogger(__name__)


@dataclass
class _State:
    node: Node
    status: str = "PENDING"
    attempts: int = 0
    lost: int = 0
    outputs: dict[str, dict] = field(default_factory=dict)
    key: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    params_json: str = "{}"
    child_id: str | None = None
    result: StepResult | None = None
    datasets: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    pending_args: dict[str, Any] = field(default_factory=dict)
    result_run: str | None = None


def run_pipeline(pipeline: Pipeline, params: dict[str, Any], *, executor: Any = None, use_cache: bool = True,
                 raise_on_failure: bool = True) -> Any:
    """See `Pipeline.run`."""
    import mloop.tracking as tracking
    from mloop.config import get_settings
    from mloop.pipelines.executors import get_executor
    from mloop.pipelines.records import PipelineRun
    from mloop.store.db import get_store
    from mloop.store.pipelines import PipelineRunRepo
    from mloop.store.schema import current_user, now_ms

    bound = pipeline.bind(params)
    bound, declared = _resolve_declared(pipeline, bound)
    params_json = canonical_json({k: v for k, v in bound.items()}, what=f"pipeline {pipeline.name!r} parameters")
    dag, named = pipeline.trace(bound)
    order = dag.order()
    for node in order:
        plain = substitute(node.args, lambda ref: None)
        canonical_json({k: v for k, v in plain.items() if not refs_in(node.args[k])},
                       what=f"step {node.name!r}: a parameter")
    ex = get_executor(executor)
    settings = get_settings()
    if hasattr(ex, "check_stores"):
        ex.check_stores(settings)
    if not ex.supports_timeout:
        for node in order:
            if node.step.timeout is not None:
                raise InvalidInput(
                    f"step {node.name!r} sets timeout={node.step.timeout:g}, which needs a process; run with "
                    "executor='processes' or 'ray'"
                )
    if hasattr(ex, "start"):
        ex.start()  # an unreachable cluster fails here, before anything is recorded

    store = get_store()
    nested = tracking.active_run() is not None
    prun = tracking.start_run(experiment=pipeline.experiment, name=f"{pipeline.name}-{uuid.uuid4().hex[:6]}",
                              nested=nested, params={k: _param_text(v) for k, v in bound.items()},
                              tags={"mloop.pipeline": pipeline.name, "mloop.executor": ex.name})
    repo = PipelineRunRepo(store)
    states = {n.name: _State(n) for n in order}
    try:
        repo.create(
            {"id": prun.id, "pipeline": pipeline.name, "run_id": prun.id, "status": "RUNNING", "executor": ex.name,
             "params": json_loads(params_json), "inputs": {k: str(v) for k, (v, _) in declared.items()},
             "outputs": {k: {"step": r.node, "output": r.output} for k, r in named.items()},
             "source": pipeline.source, "start_ms": prun.start_time, "end_ms": None, "error": None,
             "user": current_user()},
            [{"pipeline_run_id": prun.id, "name": n.name, "step": n.step.qualname, "position": i, "status": "PENDING",
              "upstream": n.upstream, "params": {}, "inputs": {}, "outputs": {}, "cache_key": None, "cached": False,
              "run_id": None, "attempts": 0, "start_ms": None, "end_ms": None, "logs_digest": None, "gates": None,
              "error": None} for i, n in enumerate(order)],
            dataset_edges=[dv_id for (_, dv_id) in declared.values()],
        )
        context = _Context(pipeline, prun, dag, states, ex, repo, settings, use_cache, now_ms)
        try:
            context.walk(order)
        finally:
            context.records.flush()
    except BaseException as exc:
        ex.shutdown()
        prun.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED", f"{type(exc).__name__}: {exc}")
        try:
            repo.finish(prun.id, "FAILED", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001  (the row may not exist if create failed)
            pass
        raise
    ex.shutdown()

    failed = [s for s in states.values() if s.status == "FAILED"]
    outputs = {k: {"step": r.node, "output": r.output, **states[r.node].outputs.get(r.output, {})}
               for k, r in named.items()}
    error_text = None
    if failed:
        first = failed[0]
        error_text = f"step {first.node.name!r} failed: {_error_line(first.result)}"
    child_ids = [s.child_id for s in states.values() if s.child_id]
    cached_runs = [s.result_run for s in states.values() if s.result_run]
    models = repo.finish(prun.id, "FAILED" if failed else "COMPLETED", outputs=outputs, error=error_text,
                         produced_by=child_ids + cached_runs)
    prun.end("FAILED" if failed else "FINISHED", error_text)
    result = PipelineRun.load(prun.id, trusted=True)
    result.models = models
    if failed and raise_on_failure:
        raise _step_error(failed[0], result)
    return result


def json_loads(text: str) -> Any:
    import json

    return json.loads(text)


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else canonical_json(value) if _jsonable(value) else repr(value)


def _jsonable(value: Any) -> bool:
    try:
        canonical_json(value)
        return True
    except InvalidInput:
        return False


def _resolve_declared(pipeline: Pipeline, bound: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[Any, str]]]:
    """Declared dataset inputs pinned to a version: `{param: (DatasetRef("datasets:/name@N"), "name/N")}`."""
    declared: dict[str, tuple[Any, str]] = {}
    out = dict(bound)
    for key in pipeline.dataset_params(bound):
        pinned, dv_id, _digest = resolve_dataset(bound[key])
        out[key] = pinned
        declared[key] = (pinned, dv_id)
    return out, declared


def resolve_dataset(uri: Any) -> tuple[DatasetRef, str, str]:
    """`(pinned DatasetRef, "name/N", digest)` for a dataset URI (`@latest` resolved now)."""
    ref = DatasetRef(uri)
    try:
        from mloop import data
    except ImportError as exc:  # the data room is not installed in this build
        raise InvalidInput(f"cannot resolve {ref}: dataset versioning (mloop.data) is not available") from exc
    dv = data.get(str(ref))
    return DatasetRef(f"datasets:/{dv.name}@{dv.version}"), f"{dv.name}/{dv.version}", dv.digest


class _Context:
    def __init__(self, pipeline: Pipeline, prun: Any, dag: DAG, states: dict[str, _State], ex: Any, repo: Any,
                 settings: Any, use_cache: bool, now_ms: Any) -> None:
        from mloop.store.db import get_store
        from mloop.store.pipelines import StepCacheRepo

        self.pipeline = pipeline
        self.prun = prun
        self.dag = dag
        self.states = states
        self.ex = ex
        self.repo = repo
        # In process, step outcomes are written in batches (every 32 steps or 0.2 s, and at the end);
        # elsewhere each one commits as it arrives.
        self.batched = bool(getattr(ex, "in_process", False))
        self.records = repo.batched() if self.batched else repo
        self._pending_cache: dict[str, dict] = {}
        self._batch_started = 0.0
        self.cache = StepCacheRepo(get_store())
        self.use_cache = use_cache
        self.hasher = CodeHasher()
        self.now_ms = now_ms
        self.settings = {"tracking_uri": settings.tracking_uri, "artifact_uri": settings.artifact_uri,
                         "home": str(settings.home)}
        self.handles: dict[Any, str] = {}
        from mloop.artifacts import get_blob_store

        self.blobs = get_blob_store()

    # -- the walk ------------------------------------------------------------------------------
    def walk(self, order: list[Node]) -> None:
        waiting = {n.name: len(n.upstream) for n in order}
        children: dict[str, list[str]] = {n.name: [] for n in order}
        for n in order:
            for up in n.upstream:
                children[up].append(n.name)
        ready = [n.name for n in order if waiting[n.name] == 0]

        def settle(name: str) -> None:
            if self.states[name].status in ("COMPLETED", "CACHED"):
                for child in children[name]:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        ready.append(child)

        while ready or self.handles:
            while ready:
                name = ready.pop(0)
                state = self.states[name]
                if state.status != "PENDING":  # skipped below a failure
                    continue
                self.dispatch(state)
                if state.status != "RUNNING":  # a cache hit, or failed before starting
                    settle(name)
            if not self.handles:
                break
            for handle in self.ex.wait(list(self.handles)):
                name = self.handles.pop(handle)
                self.complete(self.states[name], self.ex.result(handle))
                if self.states[name].status != "RUNNING":  # RUNNING again: retried
                    settle(name)

    def dispatch(self, state: _State) -> None:
        node = state.node
        step = node.step
        try:
            args = substitute(node.args, lambda ref: self._input(ref))
            args = self._pin_datasets(state, args)
            plain = substitute(node.args, lambda ref: {"$input": f"{ref.node}.{ref.output}"})
            plain = self._pin_datasets(state, plain, record=False)
            state.params_json = canonical_json(plain, what=f"step {node.name!r} parameters")
            state.params = {k: v for k, v in substitute(args, lambda r: None).items() if not refs_in(node.args[k])}
            state.inputs = {f"{ref.node}.{ref.output}": self.states[ref.node].outputs[ref.output]
                            for v in node.args.values() for ref in refs_in(v)}
            extra = step._key_extra(plain) if step._key_extra is not None else None
            key_inputs = [self.states[r.node].outputs[r.output]["digest"] for v in node.args.values() for r in refs_in(v)]
            state.key = cache_key(step_name=step.qualname, code=self.hasher.function(step.fn),
                                  cache_version=step.cache_version, params_json=state.params_json,
                                  inputs=key_inputs, outputs=step.outputs, extra=extra)
        except MloopError as exc:
            self._fail_before_start(state, exc)
            return
        if step.cache and self.use_cache and self._try_cache(state):
            return
        self._submit(state, args)

    def _input(self, ref: OutputRef) -> InputBlob:
        entry = self.states[ref.node].outputs[ref.output]
        return InputBlob(entry["kind"], entry["digest"], entry if "inline" in entry else None)

    def _pin_datasets(self, state: _State, args: dict[str, Any], record: bool = True) -> dict[str, Any]:
        from mloop.pipelines.runner import resolve_dataset

        def pin(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("datasets:/"):
                pinned, dv_id, digest = resolve_dataset(value)
                if record and dv_id not in state.datasets:
                    state.datasets.append(dv_id)
                return pinned if record else {"$dataset": digest}
            if isinstance(value, list):
                return [pin(v) for v in value]
            if isinstance(value, dict):
                return {k: pin(v) for k, v in value.items()}
            return value

        return {k: pin(v) for k, v in args.items()}

    def _try_cache(self, state: _State) -> bool:
        entry = self._pending_cache.get(state.key) or self.cache.get(state.key)
        if entry is None:
            return False
        if not all(self.blobs.exists(o["digest"]) for o in entry["outputs"].values() if "inline" not in o):
            self.cache.delete(state.key)  # a blob was collected: recompute, and cache the new outputs
            return False
        state.outputs = entry["outputs"]
        state.status = "CACHED"
        state.result_run = entry.get("run_id")
        now = self.now_ms()
        self._finish(self.prun.id, state.node.name, status="CACHED", outputs=state.outputs, cached=True,
                              run_id=entry.get("run_id"), cache_key=state.key, inputs=state.inputs, params=state.params,
                              start_ms=now,
                              end_ms=now, gates=entry.get("gates") or None)
        return True

    def _submit(self, state: _State, args: dict[str, Any]) -> None:
        from mloop.store.schema import current_user

        node = state.node
        state.attempts += 1
        state.status = "RUNNING"
        state.pending_args = args
        if getattr(self.ex, "in_process", False):
            # the attempt starts its own child run under the active pipeline run; the step's row is
            # written once, when it ends (the child run shows it running meanwhile)
            state.child_id = None
            task = StepTask(self.prun.id, node.name, node.step, args, None, self.settings, state.attempts,
                            child_name=node.name, experiment=self.prun.experiment)
        else:
            child_id = uuid.uuid4().hex
            ts = self.now_ms()
            record = self.prun._record
            child = {"id": child_id, "experiment_id": record["experiment_id"], "name": node.name,
                     "status": "RUNNING", "parent_id": self.prun.id, "start_ms": ts, "end_ms": None,
                     "heartbeat_ms": ts, "heartbeat_interval_ms": record["heartbeat_interval_ms"],
                     "user": current_user(), "environment_id": record.get("environment_id"),
                     "lifecycle_stage": "active", "error": None}
            state.child_id = child_id
            self.repo.start_step(self.prun.id, node.name, child, state.attempts, state.key, state.inputs,
                                 params=state.params, dataset_edges=state.datasets)
            task = StepTask(self.prun.id, node.name, node.step, args, child_id, self.settings, state.attempts)
        try:
            handle = self.ex.submit(task, resources=node.step.resources, timeout=node.step.timeout)
        except MloopError as exc:
            self._end_child(state.child_id, "FAILED", str(exc))
            self._fail(state, StepResult(ok=False, error_type=type(exc).__name__, error_message=str(exc),
                                         exception=exc))
            return
        self.handles[handle] = node.name

    def complete(self, state: _State, result: StepResult) -> None:
        node = state.node
        state.result = result
        in_worker = result.child_run_id is not None and state.child_id is None
        if result.child_run_id is not None:
            state.child_id = result.child_run_id
        if in_worker and state.datasets:
            self._link_datasets(state)
        if result.ok:
            state.outputs = result.outputs
            state.status = "COMPLETED"
            entry = None
            if node.step.cache:
                entry = {"key": state.key, "step": node.step.qualname, "outputs": result.outputs,
                         "pipeline_run_id": self.prun.id, "node": node.name, "run_id": state.child_id,
                         "gates": result.gates or None}
            self._finish(self.prun.id, node.name, status="COMPLETED", outputs=result.outputs,
                                  run_id=state.child_id, start_ms=result.start_ms or None, end_ms=result.end_ms or None,
                                  logs_digest=result.logs_digest, gates=result.gates or None, cache_entry=entry,
                                  cache_key=state.key, inputs=state.inputs, params=state.params,
                                  attempts=state.attempts)
            return
        if result.worker_lost or result.error_type == "TimeoutError":
            self._end_child(state.child_id, "FAILED", result.error_message)
        is_gate = isinstance(result.exception, GateFailed) or result.error_type == "GateFailed"
        budget = node.step.retries
        if result.worker_lost:
            state.lost += 1
            budget = max(budget, 1)
        if not is_gate and state.attempts <= budget:
            log.warning("step %s attempt %d failed (%s); retrying", node.name, state.attempts, _error_line(result))
            self._submit(state, state.pending_args)
            return
        self._fail(state, result)

    def _fail(self, state: _State, result: StepResult) -> None:
        state.status = "FAILED"
        state.result = result
        exc = result.exception
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}" if exc is not None else result.error_type
        text = result.traceback or f"{kind}: {result.error_message}"
        self._finish(self.prun.id, state.node.name, status="FAILED", run_id=state.child_id,
                              start_ms=result.start_ms or None, end_ms=result.end_ms or None,
                              logs_digest=result.logs_digest, gates=result.gates or None, error=text[-20000:],
                              attempts=state.attempts, cache_key=state.key, inputs=state.inputs,
                              params=state.params)
        below = self.dag.downstream(state.node.name)
        for name in below:
            self.states[name].status = "SKIPPED"
        self.records.skip_steps(self.prun.id, below, f"skipped: upstream step {state.node.name!r} failed")

    def _finish(self, *args: Any, **kwargs: Any) -> None:
        import time

        entry = kwargs.get("cache_entry")
        if entry is not None and self.batched:
            self._pending_cache[entry["key"]] = entry
        self.records.finish_step(*args, **kwargs)
        if self.batched:
            now = time.monotonic()
            if self.records.pending == 1:
                self._batch_started = now
            if self.records.pending >= 32 or now - self._batch_started >= 0.2:
                self.records.flush()
                self._pending_cache.clear()

    def _link_datasets(self, state: _State) -> None:
        from mloop.store.lineage import LineageRepo

        repo = LineageRepo(self.repo.store)
        for dv in state.datasets:
            repo.add(("dataset_version", dv), "input", ("run", state.child_id))

    def _fail_before_start(self, state: _State, exc: MloopError) -> None:
        self._fail(state, StepResult(ok=False, error_type=type(exc).__name__, error_message=str(exc), exception=exc))

    def _end_child(self, child_id: str | None, status: str, error: str | None) -> None:
        if not child_id:
            return
        from mloop.store.db import get_store
        from mloop.store.schema import now_ms
        from mloop.store.tracking import RunRepo

        RunRepo(get_store()).set_status(child_id, status, end_ms=now_ms(), error=error)


def _error_line(result: StepResult | None) -> str:
    if result is None:
        return "unknown error"
    return f"{result.error_type}: {result.error_message}"


def _step_error(state: _State, run: Any) -> BaseException:
    result = state.result
    exc = result.exception if result is not None else None
    name = state.node.name
    if isinstance(exc, MloopError) and not isinstance(exc, StepFailed):
        exc.add_note(f"in step {name!r} of pipeline run {run.id}")
        exc.pipeline_run = run  # type: ignore[attr-defined]
        return exc
    attempts = f" after {state.attempts} attempt(s)" if state.attempts > 1 else ""
    err = StepFailed(f"pipeline {run.pipeline!r}: step {name!r} failed{attempts}: {_error_line(result)} "
                     f"(see 'mloop pipeline show {run.id}')")
    err.pipeline_run = run  # type: ignore[attr-defined]
    if exc is not None:
        err.__cause__ = exc
    return err


__all__ = ["run_pipeline", "resolve_dataset"]
