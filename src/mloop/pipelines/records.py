"""Pipeline run records as objects: `PipelineRun` (id, status, steps, outputs) and `StepRun`,
with the DAG as a text tree (status, duration, cache marks) and an HTML table for notebooks.

    >>> run = mloop.pipelines.get_run(run_id)  # doctest: +SKIP
    >>> print(run.tree())  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mloop.errors import InvalidInput, NotFound

MARKS = {"COMPLETED": "✓", "CACHED": "⚡", "FAILED": "✗", "SKIPPED": "⊘", "RUNNING": "…", "PENDING": "·"}


@dataclass(frozen=True)
class StepRun:
    """One step of a pipeline run: status, timings, cache hit, inputs/outputs (digests), logs, error."""

    name: str
    step: str
    status: str
    cached: bool
    upstream: list[str]
    params: dict
    inputs: dict
    outputs: dict
    cache_key: str | None
    run_id: str | None
    attempts: int
    start_ms: int | None
    end_ms: int | None
    logs_digest: str | None
    gates: list
    error: str | None

    @property
    def duration_s(self) -> float | None:
        if self.start_ms is None or self.end_ms is None:
            return None
        return (self.end_ms - self.start_ms) / 1000

    def logs(self) -> str:
        """The captured stdout, stderr and log records of the step's last attempt."""
        if not self.logs_digest:
            return ""
        from mloop.artifacts import get_blob_store

        return get_blob_store().get(self.logs_digest).decode("utf-8", "replace")

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["duration_s"] = self.duration_s
        return out


class PipelineRun:
    """A pipeline run: `id` (also its tracking run's id), `pipeline`, `status`, `params`, `steps`,
    `outputs` (the values the body returned), `error`, `start_time`, `end_time`."""

    def __init__(self, record: dict, *, trusted: bool = False) -> None:
        self._record = record
        self._trusted = trusted
        self._values: dict[str, Any] = {}
        self.models: list[str] = []
        self.steps = [StepRun(**{k: s.get(k) for k in StepRun.__dataclass_fields__}) for s in record.get("steps", [])]

    @classmethod
    def load(cls, run_id: str, *, trusted: bool = False) -> PipelineRun:
        from mloop.store.db import get_store
        from mloop.store.pipelines import PipelineRunRepo

        return cls(PipelineRunRepo(get_store()).get(run_id), trusted=trusted)

    id = property(lambda self: self._record["id"])
    pipeline = property(lambda self: self._record["pipeline"])
    status = property(lambda self: self._record["status"])
    params = property(lambda self: dict(self._record["params"]))
    inputs = property(lambda self: dict(self._record["inputs"]))
    executor = property(lambda self: self._record["executor"])
    error = property(lambda self: self._record.get("error"))
    start_time = property(lambda self: self._record["start_ms"])
    end_time = property(lambda self: self._record.get("end_ms"))
    run_id = property(lambda self: self._record["run_id"])
    source = property(lambda self: self._record.get("source"))

    @property
    def ok(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def duration_s(self) -> float | None:
        return None if not self.end_time else (self.end_time - self.start_time) / 1000

    def step(self, name: str) -> StepRun:
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFound(f"pipeline run {self.id} has no step {name!r} (steps: {', '.join(s.name for s in self.steps)})")

    @property
    def cached_steps(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "CACHED"]

    @property
    def executed_steps(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "COMPLETED"]

    @property
    def gates(self) -> list[dict]:
        """Every gate report the run's steps produced, in step order."""
        return [g for s in self.steps for g in s.gates]

    @property
    def outputs(self) -> dict[str, Any]:
        """The pipeline's outputs that were produced (all of them for a completed run), loaded from the
        artifact store; pickles load only for a run this process made (else use `output(name, trust=True)`)."""
        outs = self._record.get("outputs", {})
        return {name: self.output(name, trust=self._trusted) for name, entry in outs.items() if entry.get("digest")}

    def output(self, name: str | None = None, *, trust: bool = False) -> Any:
        """One output by name (the only one when `name` is None); pickles need `trust=True`."""
        outs = self._record.get("outputs", {})
        if name is None:
            if len(outs) != 1:
                raise InvalidInput(f"pipeline run {self.id} has outputs {sorted(outs)}; name one")
            name = next(iter(outs))
        if name not in outs:
            raise NotFound(f"pipeline run {self.id} has no output {name!r} (outputs: {', '.join(outs) or 'none'})")
        entry = outs[name]
        if not entry.get("digest"):
            raise NotFound(f"output {name!r} of pipeline run {self.id} was not produced (step {entry.get('step')!r} "
                           f"is {self.step(entry['step']).status})")
        if name not in self._values:
            from mloop.pipelines import materialize

            self._values[name] = materialize.load(entry, trust=trust or self._trusted)
        return self._values[name]

    def step_output(self, step: str, output: str = "output", *, trust: bool = False) -> Any:
        """An output of any step of the run."""
        from mloop.pipelines import materialize

        s = self.step(step)
        if output not in s.outputs:
            raise NotFound(f"step {step!r} has no stored output {output!r} (status {s.status})")
        return materialize.load(s.outputs[output], trust=trust or self._trusted)

    def to_dict(self) -> dict:
        keys = ("id", "pipeline", "status", "params", "inputs", "executor", "error", "start_ms", "end_ms", "run_id",
                "source", "outputs")
        out = {k: self._record.get(k) for k in keys}
        out["duration_s"] = self.duration_s
        out["steps"] = [s.to_dict() for s in self.steps]
        out["models"] = list(self.models)
        return out

    # -- rendering -------------------------------------------------------------------------------
    def tree(self) -> str:
        """The DAG as an indented tree: each step under its first upstream step, with marks."""
        lines = [f"{self.pipeline} {self.id[:12]} {self.status}" + (f" ({self.duration_s:.2f} s)" if self.duration_s else "")]
        children: dict[str | None, list[StepRun]] = {}
        for s in self.steps:
            children.setdefault(s.upstream[0] if s.upstream else None, []).append(s)

        def label(s: StepRun) -> str:
            mark = MARKS.get(s.status, "?")
            parts = [f"{mark} {s.name}", s.status.lower()]
            if s.duration_s is not None and s.status != "CACHED":
                parts.append(f"{s.duration_s:.2f} s")
            if s.attempts > 1:
                parts.append(f"{s.attempts} attempts")
            if len(s.upstream) > 1:
                parts.append("after " + ", ".join(s.upstream))
            return "  ".join(parts)

        def walk(parent: str | None, prefix: str) -> None:
            kids = children.get(parent, [])
            for i, s in enumerate(kids):
                last = i == len(kids) - 1
                lines.append(f"{prefix}{'└── ' if last else '├── '}{label(s)}")
                walk(s.name, prefix + ("    " if last else "│   "))

        walk(None, "")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"PipelineRun(id={self.id!r}, pipeline={self.pipeline!r}, status={self.status!r}, "
                f"steps={len(self.steps)}, cached={len(self.cached_steps)})")

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(s.name)}</td><td>{escape(MARKS.get(s.status, ''))} {escape(s.status)}</td>"
            f"<td>{'' if s.duration_s is None else f'{s.duration_s:.2f} s'}</td>"
            f"<td>{escape(', '.join(s.upstream))}</td></tr>"
            for s in self.steps
        )
        return (f"<p><b>{escape(self.pipeline)}</b> {escape(self.id)} — {escape(self.status)}</p>"
                f"<table><tr><th>step</th><th>status</th><th>duration</th><th>after</th></tr>{rows}</table>")


def get_run(run_id: str) -> PipelineRun:
    """A stored pipeline run by id (or a unique prefix of at least 4 characters)."""
    return PipelineRun.load(run_id)


def list_runs(pipeline: str | None = None, limit: int = 50) -> list[dict]:
    """Pipeline runs, newest first: id, pipeline, status, start/end, per-status step counts."""
    from mloop.store.db import get_store
    from mloop.store.pipelines import PipelineRunRepo

    return PipelineRunRepo(get_store()).list(pipeline=pipeline, limit=limit)


__all__ = ["PipelineRun", "StepRun", "get_run", "list_runs"]
