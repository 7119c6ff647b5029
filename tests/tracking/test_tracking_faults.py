"""Faults: four processes logging 10,000 metrics each into one store, and processes killed at
named crash points (the store opens cleanly, committed rows are there, the run turns LOST)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select, text

import mloop
from mloop.store.tracking import ExperimentRepo, metrics, runs
from support import wait_until

PER_PROCESS = 10_000

_LOGGER = """
import sys, time, pathlib
import mloop, mloop.store
mloop.store.get_store()
pathlib.Path(sys.argv[1]).touch()
deadline = time.monotonic() + 60
while not pathlib.Path(sys.argv[2]).exists() and time.monotonic() < deadline:
    time.sleep(0.002)
with mloop.start_run(experiment="load") as run:
    for i in range(int(sys.argv[3])):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
print(run.id)
"""


def test_four_processes_log_ten_thousand_metrics_each(store, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _LOGGER, str(tmp_path / f"r{i}"), str(go), str(PER_PROCESS)],
                              env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    try:
        wait_until(lambda: all((tmp_path / f"r{i}").exists() for i in range(4)), timeout=60, what="loggers ready")
        go.touch()
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err.lower(), err
    run_ids = [out.strip() for out, _ in outs]
    with store.read() as conn:
        total = conn.execute(select(func.count()).select_from(metrics)).scalar()
        per_run = dict(conn.execute(select(metrics.c.run_id, func.count(func.distinct(metrics.c.step)))
                                    .group_by(metrics.c.run_id)).all())
    assert total == 4 * PER_PROCESS
    assert per_run == {r: PER_PROCESS for r in run_ids}
    for run_id in run_ids:
        got = mloop.get_run(run_id)
        assert got.status == "FINISHED" and got.metrics == {"loss": 1.0 / PER_PROCESS}


_CRASHER = """
import sys
import mloop
run = mloop.start_run(experiment="crash")
print(run.id, flush=True)
run.log_metrics({f"m{i}": float(i) for i in range(100)}, step=1)  # one append: one batch
mloop.tracking.writer.get_writer(run.store).flush()
run.log_metrics({f"m{i}": float(i) for i in range(100)}, step=2)
mloop.tracking.writer.get_writer(run.store).flush()
print("survived", flush=True)
"""


def _crash(point: str, heartbeat: str = "0.2") -> tuple[str, str]:
    env = {**os.environ, "MLOOP_CRASH_AT": point, "MLOOP_HEARTBEAT_S": heartbeat}
    proc = subprocess.run([sys.executable, "-c", _CRASHER], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    assert "survived" not in proc.stdout
    return proc.stdout.split()[0] if proc.stdout.strip() else "", proc.stderr


def _reopened_store():
    mloop.config.reset()  # a fresh open, as the next process would do
    from mloop.store import get_store

    store = get_store()
    if store.dialect == "sqlite":
        with store.read() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    return store


def _count(store, run_id: str) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(metrics).where(metrics.c.run_id == run_id)).scalar()


def _becomes_lost(store, run_id: str) -> None:
    with store.read() as conn:
        row = conn.execute(select(runs.c.status, runs.c.heartbeat_interval_ms).where(runs.c.id == run_id)).one()
    assert tuple(row) == ("RUNNING", 200)  # the stored status; LOST is computed from the heartbeat
    wait_until(lambda: mloop.get_run(run_id).status == "LOST", timeout=20, what="the run to turn LOST")
    assert run_id in {r.id for r in mloop.search_runs(filter="attributes.status = 'LOST'")}
    assert run_id not in {r.id for r in mloop.search_runs(filter="attributes.status = 'RUNNING'")}


def test_killed_after_a_flush_keeps_the_flushed_metrics_and_turns_lost(store):
    run_id, _ = _crash("metrics.after_flush")
    store = _reopened_store()
    assert _count(store, run_id) == 100
    assert mloop.get_run(run_id).metrics == {f"m{i}": float(i) for i in range(100)}
    _becomes_lost(store, run_id)


def test_killed_before_a_metric_commit_leaves_no_partial_batch(store):
    run_id, _ = _crash("metrics.before_commit")
    store = _reopened_store()
    assert _count(store, run_id) == 0
    assert mloop.get_run(run_id).metrics == {}
    _becomes_lost(store, run_id)
    with mloop.start_run(run_id=run_id) as resumed:  # the store takes writes again, and a lost run resumes
        resumed.log_metric("after", 1.0)
    assert mloop.get_run(run_id).status == "FINISHED" and _count(store, run_id) == 1


def test_killed_right_after_the_run_row_commits(store):
    run_id, _ = _crash("run.after_create")
    store = _reopened_store()
    assert run_id == ""  # killed before start_run returned
    with store.read() as conn:
        (found,) = conn.execute(select(runs.c.id).where(runs.c.status == "RUNNING")).scalars().all()
    _becomes_lost(store, found)


def test_a_live_run_keeps_its_heartbeat_fresh(store, monkeypatch):
    monkeypatch.setenv("MLOOP_HEARTBEAT_S", "0.2")
    mloop.config.reset()
    with mloop.start_run() as run:
        start = mloop.get_run(run.id)._record["heartbeat_ms"]
        wait_until(lambda: mloop.get_run(run.id)._record["heartbeat_ms"] >= start + 400, timeout=20,
                   what="two heartbeats")
    assert mloop.get_run(run.id).status == "FINISHED"


@pytest.mark.parametrize("point", ["metrics.after_flush"])
def test_crash_points_are_inert_unless_named(store, point, monkeypatch):
    monkeypatch.setenv("MLOOP_CRASH_AT", "some.other.point")
    with mloop.start_run() as run:
        run.log_metric("m", 1.0)
    assert mloop.get_run(run.id).metrics == {"m": 1.0}


def test_killed_inside_the_run_create_transaction_leaves_no_run(store):
    run_id, _ = _crash("run.create.before_commit")
    store = _reopened_store()
    assert run_id == ""
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar() == 0
    assert [e["name"] for e in ExperimentRepo(store).list()] == ["crash"]  # committed before, in its own txn
    with mloop.start_run(experiment="crash") as run:  # and the store takes the next run
        pass
    assert mloop.get_run(run.id).status == "FINISHED"
