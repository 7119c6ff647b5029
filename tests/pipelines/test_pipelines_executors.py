"""The Executor protocol: every local implementation passes the same conformance checks
(the Ray executor runs the same pipelines in test_pipelines_ray.py)."""

from __future__ import annotations

import pytest

import mloop
from mloop.config import get_settings
from mloop.errors import InvalidInput
from mloop.pipelines import Executor, LocalExecutor, get_executor
from mloop.pipelines.execute import InputBlob, StepTask
from mloop.pipelines.materialize import save


@mloop.step
def add_one(x: int):
    return x + 1


@mloop.step
def fails(x: int):
    raise KeyError(f"missing {x}")


def _task(step, **args) -> StepTask:
    s = get_settings()
    return StepTask("p" * 32, step.name, step, args, None,
                    {"tracking_uri": s.tracking_uri, "artifact_uri": s.artifact_uri, "home": str(s.home)})


@pytest.fixture(params=["local", "processes:2"])
def executor(request):
    ex = get_executor(request.param)
    yield ex
    ex.shutdown()


def test_conformance(executor):
    assert isinstance(executor, Executor) and executor.name
    stored = save(41)
    handles = [executor.submit(_task(add_one, x=InputBlob(stored["kind"], stored["digest"], stored)), resources={},
                               timeout=None),
               executor.submit(_task(fails, x=7), resources={"cpus": 1}, timeout=None)]
    results = {}
    while len(results) < 2:
        for h in executor.wait([h for h in handles if id(h) not in results]):
            results[id(h)] = executor.result(h)
    ok, bad = results[id(handles[0])], results[id(handles[1])]
    assert ok.ok and ok.outputs["output"]["inline"] == 42 and ok.end_ms >= ok.start_ms > 0
    assert not bad.ok and bad.error_type == "KeyError" and "missing 7" in bad.error_message
    assert "raise KeyError" in bad.traceback
    executor.shutdown()
    executor.shutdown()  # idempotent


def test_names_and_bad_specs():
    assert get_executor("local").name == "local" and not get_executor("local").supports_timeout
    assert get_executor("processes:3").name == "processes:3" and get_executor("processes:3").supports_timeout
    assert isinstance(get_executor(LocalExecutor(2)), LocalExecutor)
    for bad in ("spark", "processes:0", "processes:x", 3):
        with pytest.raises(InvalidInput):
            get_executor(bad)
