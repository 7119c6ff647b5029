"""Failures: a crashing step, retries, skipped downstream steps, killed workers, timeouts, gates."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import mloop
from mloop.errors import GateFailed, StepFailed


def _bump(path: Path) -> int:
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n


@mloop.step
def seed(n: int = 3):
    return n


@mloop.step
def boom(x, message: str = "bad value"):
    raise ValueError(f"{message}: {x}")


@mloop.step
def after(x):
    return x


@mloop.step
def other(x):
    return x * 2


@mloop.pipeline(name="crashy")
def crashy(n: int = 3):
    s = seed(n)
    return {"bad": after(boom(s)), "good": other(s)}


def test_a_failing_step_fails_the_run_skips_downstream_and_raises_with_its_name(tracking_uri):
    with pytest.raises(StepFailed, match="step 'boom' failed: ValueError: bad value: 3") as info:
        crashy.run(n=3)
    run = info.value.pipeline_run
    assert isinstance(info.value.__cause__, ValueError)
    assert run.status == "FAILED" and "boom" in run.error
    status = {s.name: s.status for s in run.steps}
    assert status == {"seed": "COMPLETED", "boom": "FAILED", "after": "SKIPPED", "other": "COMPLETED"}
    stored = mloop.pipelines.get_run(run.id)
    boom_step = stored.step("boom")
    assert "Traceback" in boom_step.error and 'raise ValueError(f"{message}: {x}")' in boom_step.error
    assert mloop.get_run(boom_step.run_id).status == "FAILED"
    assert mloop.get_run(run.id).status == "FAILED"
    assert stored.step("other").outputs["output"]["kind"] == "json"
    assert run.outputs == {"good": 6}  # what the failed run did produce
    with pytest.raises(mloop.errors.NotFound, match="was not produced"):
        run.output("bad")

    again = crashy.run(n=3, raise_on_failure=False)  # failures are not cached: boom runs again
    assert again.status == "FAILED" and again.step("boom").attempts == 1
    assert again.step("seed").status == "CACHED"


def test_retries_then_success(tmp_path):
    counter = tmp_path / "attempts"

    @mloop.step(retries=2)
    def flaky(path: str):
        if _bump(Path(path)) < 3:
            raise RuntimeError("transient")
        return "ok"

    @mloop.pipeline(name="flaky")
    def flaky_p(path: str):
        return flaky(path)

    run = flaky_p.run(path=str(counter))
    assert run.status == "COMPLETED" and run.outputs["output"] == "ok"
    assert run.step("flaky").attempts == 3
    children = mloop.search_runs(filter=f"attributes.parent_id = '{run.id}'")
    assert sorted(r.status for r in children) == ["FAILED", "FAILED", "FINISHED"]

    counter.unlink()

    @mloop.step(retries=1, cache=False)
    def flaky_once(path: str):
        if _bump(Path(path)) < 3:
            raise RuntimeError("still failing")
        return "ok"

    @mloop.pipeline(name="flaky-short")
    def short(path: str):
        return flaky_once(path)

    with pytest.raises(StepFailed, match="after 2 attempt"):
        short.run(path=str(counter))


def test_a_killed_worker_is_retried_and_the_run_completes(tmp_path):
    marker = tmp_path / "killed"

    @mloop.step
    def fragile(x: int, marker: str):
        if not os.path.exists(marker):
            Path(marker).write_text("1")
            os.kill(os.getpid(), signal.SIGKILL)
        return x + 1

    @mloop.pipeline(name="fragile")
    def fragile_p(marker: str):
        return fragile(seed(1), marker)

    run = fragile_p.run(marker=str(marker), executor="processes:2")
    assert run.status == "COMPLETED" and run.outputs["output"] == 2
    assert run.step("fragile").attempts == 2


def test_timeout_in_a_process(tmp_path):
    @mloop.step(timeout=0.5, cache=False)
    def sleepy():
        import time

        time.sleep(30)

    @mloop.pipeline(name="sleepy")
    def sleepy_p():
        return sleepy()

    run = sleepy_p.run(executor="processes:1", raise_on_failure=False)
    assert run.status == "FAILED"
    assert "timed out after 0.5 s" in run.step("sleepy").error
    assert mloop.get_run(run.step("sleepy").run_id).status == "FAILED"


def test_gate_failures_are_neither_retried_nor_cached():
    @mloop.step(retries=3)
    def check(x: int):
        return mloop.gate({"accuracy": x / 10}, require={"accuracy": ">= 0.8"}).to_dict()

    @mloop.pipeline(name="gated")
    def gated(x: int = 5):
        return check(x)

    with pytest.raises(GateFailed, match=r"accuracy >= 0.8") as info:
        gated.run(x=5)
    run = info.value.pipeline_run
    assert run.step("check").attempts == 1
    assert run.gates[0]["passed"] is False and run.gates[0]["criteria"][0]["candidate"] == 0.5
    again = gated.run(x=5, raise_on_failure=False)
    assert again.step("check").status == "FAILED"  # not a cache hit
    ok = gated.run(x=9)
    assert ok.status == "COMPLETED" and ok.gates[0]["passed"] is True


def test_parallel_processes_give_the_local_results():
    @mloop.step
    def square(x: int):
        return x * x

    @mloop.step
    def total(values: list):
        return sum(values)

    @mloop.pipeline(name="wide")
    def wide(n: int = 6):
        return total([square(i) for i in range(n)])

    local = wide.run(n=6, cache=False)
    parallel = wide.run(n=6, executor="processes:2", cache=False)
    assert local.outputs["output"] == parallel.outputs["output"] == sum(i * i for i in range(6))
    assert [s.outputs for s in local.steps] == [s.outputs for s in parallel.steps]
    assert parallel.executor == "processes:2"
