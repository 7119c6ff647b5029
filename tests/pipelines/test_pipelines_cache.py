"""Caching: hits, precise invalidation by code (a step and a helper in a temp module), params,
inputs, cache_version; records and child runs; on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

import mloop
from mloop.store.db import get_store
from mloop.store.lineage import LineageRepo

HELPERS = '''
def scale(x):
    return [v * 10 for v in x]
'''

STEPS = '''
import mloop
import {helpers}

CALLS = []

@mloop.step
def load(n: int):
    CALLS.append("load")
    return list(range(n))

@mloop.step
def scaled(xs):
    CALLS.append("scaled")
    return {helpers}.scale(xs)

@mloop.step
def count(xs):
    CALLS.append("count")
    return len(xs)

@mloop.step
def report(values, size):
    CALLS.append("report")
    run = mloop.start_run()          # returns the step's own child run
    run.log_metric("total", sum(values))
    return {{"total": sum(values), "size": size, "run": run.id, "active": mloop.active_run().id}}

@mloop.pipeline(name="cached")
def cached(n: int = 4):
    xs = load(n)
    return report(scaled(xs), count(xs))
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temp package of two modules whose source the test edits, reloaded after each edit."""
    tag = tmp_path.name.replace("-", "_")
    helpers, steps = f"helpers_{tag}", f"steps_{tag}"
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / f"{helpers}.py").write_text(HELPERS)
    (tmp_path / f"{steps}.py").write_text(STEPS.format(helpers=helpers))

    class Project:
        def module(self):
            importlib.invalidate_caches()
            for name in (helpers, steps):
                if name in sys.modules:
                    importlib.reload(sys.modules[name])
            return importlib.import_module(steps)

        def edit(self, which, old, new):
            path = tmp_path / f"{helpers if which == 'helpers' else steps}.py"
            text = path.read_text()
            assert old in text
            path.write_text(text.replace(old, new))

    yield Project()
    for name in (helpers, steps):
        sys.modules.pop(name, None)


def _status(run):
    return {s.name: s.status for s in run.steps}


def test_second_run_is_cached_and_child_runs_are_the_active_runs(project, tracking_uri):
    mod = project.module()
    first = mod.cached.run(n=4)
    assert _status(first) == {"load": "COMPLETED", "scaled": "COMPLETED", "count": "COMPLETED", "report": "COMPLETED"}
    out = first.outputs["output"]
    assert out["total"] == 60 and out["size"] == 4
    report_step = first.step("report")
    assert out["run"] == out["active"] == report_step.run_id   # start_run() inside a step = the child run
    child = mloop.get_run(report_step.run_id)
    parent = mloop.get_run(first.id)
    assert child.parent_id == first.id and child.status == "FINISHED"
    assert child.metrics["total"] == 60.0
    assert child._record["environment_id"] == parent._record["environment_id"]
    assert parent.tags["mloop.pipeline"] == "cached" and parent.status == "FINISHED"

    mod.CALLS.clear()
    second = mod.cached.run(n=4)
    assert set(_status(second).values()) == {"CACHED"}
    assert mod.CALLS == []
    assert second.outputs["output"] == out
    assert second.step("report").run_id == report_step.run_id  # the run that produced the cached value
    assert second.step("report").outputs == report_step.outputs

    mod.CALLS.clear()
    third = mod.cached.run(n=4, cache=False)  # --no-cache
    assert set(_status(third).values()) == {"COMPLETED"}
    assert sorted(mod.CALLS) == ["count", "load", "report", "scaled"]


def test_editing_a_helper_or_a_step_invalidates_exactly_the_affected_steps(project):
    mod = project.module()
    mod.cached.run(n=3)

    # a helper edit that keeps its result: only the step calling it re-runs; its output digest is the
    # same, so the downstream step stays cached
    project.edit("helpers", "return [v * 10 for v in x]", "return [v * 10 for v in x]  # same values")
    mod = project.module()
    run = mod.cached.run(n=3)
    assert _status(run) == {"load": "CACHED", "scaled": "COMPLETED", "count": "CACHED", "report": "CACHED"}
    assert mod.CALLS == ["scaled"]

    # a helper edit that changes its result: the caller and what reads its output re-run
    project.edit("helpers", "v * 10", "v * 100")
    mod = project.module()
    run = mod.cached.run(n=3)
    assert _status(run) == {"load": "CACHED", "scaled": "COMPLETED", "count": "CACHED", "report": "COMPLETED"}
    assert run.outputs["output"]["total"] == 300

    # editing one step's own source re-runs that step only
    project.edit("steps", 'CALLS.append("count")\n    return len(xs)', 'CALLS.append("count")\n    return len(xs) + 0')
    mod = project.module()
    run = mod.cached.run(n=3)
    assert _status(run) == {"load": "CACHED", "scaled": "CACHED", "count": "COMPLETED", "report": "CACHED"}

    # a parameter change re-runs what depends on it
    run = mod.cached.run(n=5)
    assert _status(run)["load"] == "COMPLETED"


CALLS: list = []  # module state: not part of any key


def test_cache_version_closure_values_and_sharing_across_pipelines():
    calls = CALLS
    calls.clear()

    def make(factor):
        @mloop.step(cache_version=1)
        def times(x: int):
            CALLS.append(factor)
            return x * factor
        return times

    double, triple = make(2), make(3)

    @mloop.pipeline(name="closure-a")
    def a(x: int = 2):
        return double(x)

    @mloop.pipeline(name="closure-b")
    def b(x: int = 2):
        return triple(x)

    assert a.run().outputs["output"] == 4
    assert b.run().outputs["output"] == 6          # same source, other closure value: not a hit
    assert calls == [2, 3]

    @mloop.pipeline(name="closure-c")
    def c(x: int = 2):
        return double(x)

    run = c.run()
    assert run.cached_steps == ["times"]             # the cache is per step, shared across pipelines
    assert run.outputs["output"] == 4

    bumped = mloop.step(cache_version=2)(double.fn)

    @mloop.pipeline(name="closure-d")
    def d(x: int = 2):
        return bumped(x)

    assert d.run().executed_steps == ["times"]


def test_table_and_array_outputs_round_trip():
    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    @mloop.step(outputs=("frame", "array", "arrow", "polars", "obj"))
    def make():
        df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}, index=[10, 11, 12])
        return df, np.arange(6).reshape(2, 3), pa.table({"c": [1.5, 2.5]}), pl.DataFrame({"d": [1, 2]}), {1, 2}

    @mloop.step
    def check(frame, array, arrow, polars, obj):
        assert isinstance(frame, pd.DataFrame) and list(frame.index) == [10, 11, 12]
        assert array.shape == (2, 3) and isinstance(arrow, pa.Table) and isinstance(polars, pl.DataFrame)
        return {"rows": len(frame), "sum": int(array.sum()), "c": arrow.column("c").to_pylist(),
                "d": polars["d"].to_list(), "obj": sorted(obj)}

    @mloop.pipeline(name="kinds")
    def kinds():
        return check(*make())

    run = kinds.run()
    assert run.outputs["output"] == {"rows": 3, "sum": 15, "c": [1.5, 2.5], "d": [1, 2], "obj": [1, 2]}
    kinds_by_output = {k: v["kind"] for k, v in run.step("make").outputs.items()}
    assert kinds_by_output == {"frame": "pandas", "array": "numpy", "arrow": "arrow", "polars": "polars",
                               "obj": "pickle"}
    stored = mloop.pipelines.get_run(run.id)
    with pytest.raises(mloop.errors.InvalidInput, match="trust=True"):
        stored.step_output("make", "obj")
    assert stored.step_output("make", "obj", trust=True) == {1, 2}
    pd.testing.assert_frame_equal(stored.step_output("make", "frame"),
                                  pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]}, index=[10, 11, 12]))


def test_logs_are_captured_and_blobs_referenced():
    import logging

    @mloop.step
    def noisy():
        print("hello from a step")
        logging.getLogger("user.code").warning("careful")
        return list(range(1000))  # big enough to be a blob of its own (small values ride inline)

    @mloop.pipeline(name="noisy")
    def noisy_p():
        return noisy()

    run = noisy_p.run()
    logs = run.step("noisy").logs()
    assert "hello from a step" in logs and "careful" in logs
    from mloop.store.lineage import BlobRefRepo

    owners = BlobRefRepo(get_store()).owners(run.step("noisy").outputs["output"]["digest"])
    assert ("step_run", f"{run.id}/noisy") in owners
    assert ("step_cache", run.step("noisy").cache_key) in owners
    assert LineageRepo(get_store()).edges(("pipeline_run", run.id)) == []  # no datasets or models here


def test_cli_run_runs_show(tmp_path):
    from support import invoke_cli

    (tmp_path / "flow.py").write_text(textwrap.dedent('''
        import mloop

        @mloop.step
        def base(C: float = 1.0):
            return C * 2

        @mloop.step
        def plus(x):
            return x + 1

        @mloop.pipeline(name="flow")
        def flow(C: float = 1.0):
            return plus(base(C))
    '''))
    first = invoke_cli("pipeline", "run", "flow.py:flow", "-p", "C=0.5")
    assert first.returncode == 0, first.stderr
    assert "✓ base" in first.stdout and "✓ plus" in first.stdout
    second = invoke_cli("pipeline", "run", "flow.py:flow", "-p", "C=0.5", "--json")
    import json

    data = json.loads(second.stdout)
    assert [s["status"] for s in data["steps"]] == ["CACHED", "CACHED"] and data["params"] == {"C": 0.5}
    listed = json.loads(invoke_cli("pipeline", "runs", "--json").stdout)
    assert [r["id"] for r in listed] == [data["id"], listed[1]["id"]]
    shown = invoke_cli("pipeline", "show", data["id"][:10])
    assert "⚡ base" in shown.stdout and "cached" in shown.stdout
    assert invoke_cli("pipeline", "run", "flow.py:nope").returncode == 2
    assert invoke_cli("pipeline", "run", "flow.py:flow", "-p", "C=abc").returncode == 2
