"""Metrics: step and timestamp, the latest value rule, NaN and inf, history order, and the buffered
writer (final flush before end_run returns, replayed batches applied once, fork safety)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

import mloop
from mloop.store.tracking import MetricRepo, latest_metrics, metric_batches, metrics
from mloop.tracking import writer as writer_mod
from mloop.tracking.writer import get_writer

# (value, step, timestamp) in logging order; the latest is the highest step, then the newest time.
LOGGED = [(1.0, 5, 100), (2.0, 3, 999), (3.0, 5, 200), (4.0, 5, 150), (5.0, -1, 5000)]
LATEST = 3.0


@pytest.fixture
def quiet_writer(store, monkeypatch):
    """The store's writer with no thread running and a 60 s flush interval, so only a full buffer
    or an explicit flush commits."""
    from support import wait_until

    monkeypatch.setattr(writer_mod, "FLUSH_SECONDS", 60.0)
    writer = get_writer(store)
    writer.close()
    wait_until(lambda: writer._thread is None, timeout=30, what="the writer thread to stop")
    return writer


def _count(store, run_id: str) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(metrics).where(metrics.c.run_id == run_id)).scalar()


@pytest.mark.parametrize("flush_each", [False, True], ids=["one-batch", "batch-per-value"])
def test_latest_is_highest_step_then_newest_timestamp(store, flush_each):
    with mloop.start_run() as run:
        for value, step, ts in LOGGED:
            run.log_metric("loss", value, step=step, timestamp=ts)
            if flush_each:
                get_writer(store).flush()
        assert run.metrics["loss"] == LATEST  # the handle follows the same rule
    assert mloop.get_run(run.id).metrics == {"loss": LATEST}
    history = mloop.metric_history(run.id, "loss")
    expected = sorted(LOGGED, key=lambda r: (r[1], r[2]))
    assert [(h["value"], h["step"], h["timestamp"]) for h in history] == expected


def test_nan_and_inf_are_stored_and_returned_as_such(store):
    with mloop.start_run() as run:
        run.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": -math.inf, "zero": 0.0})
        run.log_metric("later_nan", 1.0, step=1)
        run.log_metric("later_nan", math.nan, step=2)
    got = mloop.get_run(run.id).metrics
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf and got["zero"] == 0.0
    assert math.isnan(got["later_nan"])
    with store.read() as conn:
        raw = {r.key: (r.value, r.is_nan) for r in conn.execute(select(metrics).where(metrics.c.run_id == run.id))
               if r.key in ("nan", "zero", "inf")}
        lm = {r.key: r.is_nan for r in conn.execute(select(latest_metrics).where(latest_metrics.c.run_id == run.id))}
    assert raw == {"nan": (0.0, True), "zero": (0.0, False), "inf": (math.inf, False)}
    assert lm["nan"] is True and lm["zero"] is False
    history = mloop.metric_history(run.id, "later_nan")
    assert history[0]["value"] == 1.0 and math.isnan(history[1]["value"])
    assert mloop.search_runs(filter="metrics.nan != 1") == []
    assert [r.id for r in mloop.search_runs(filter="metrics.inf > 1e308")] == [run.id]


def test_metric_history_of_an_unknown_run_or_key(store):
    with pytest.raises(mloop.errors.NotFound, match="nope"):
        mloop.metric_history("nope", "loss")
    with mloop.start_run() as run:
        pass
    assert mloop.metric_history(run.id, "loss") == []


_COUNT_ROWS = """
import sys
import mloop.store
from sqlalchemy import text
with mloop.store.get_store().read() as conn:
    print(conn.execute(text("SELECT count(*) FROM metrics WHERE run_id = :r"), {"r": sys.argv[1]}).scalar())
"""


def test_end_run_returns_after_the_final_flush_committed(store, quiet_writer):
    n = 2500
    with mloop.start_run() as run:
        for i in range(n):
            run.log_metric("m", float(i), step=i)
        assert get_writer(store).pending() > 0
    assert get_writer(store).pending() == 0
    seen = subprocess.run([sys.executable, "-c", _COUNT_ROWS, run.id], capture_output=True, text=True, timeout=60)
    assert seen.returncode == 0, seen.stderr
    assert int(seen.stdout) == n


def test_a_replayed_batch_is_applied_once(store):
    with mloop.start_run() as run:
        pass
    repo = MetricRepo(store)
    rows = [(run.id, "m", float(i), i, 1000 + i) for i in range(10)]
    assert repo.write_batch("batch-1", rows) is True
    assert repo.write_batch("batch-1", rows) is False
    assert _count(store, run.id) == 10
    with store.read() as conn:
        assert conn.execute(select(metric_batches.c.rows).where(metric_batches.c.batch_id == "batch-1")).scalar() == 10


def test_writer_replays_a_batch_whose_commit_was_lost(store, quiet_writer, monkeypatch):
    """A commit that went through but whose reply was lost is replayed with the same id: no duplicates."""
    real = MetricRepo.write_batch
    state = {"failed": False, "ids": []}

    def commit_then_fail(self, batch_id, rows, also=None):
        state["ids"].append(batch_id)
        result = real(self, batch_id, rows, also)
        if not state["failed"]:
            state["failed"] = True
            raise ConnectionError("reply lost after commit")
        return result

    with mloop.start_run() as run:
        run.log_metrics({"a": 1.0, "b": 2.0})
        monkeypatch.setattr(MetricRepo, "write_batch", commit_then_fail)
        with pytest.raises(ConnectionError):
            get_writer(store).flush()
        assert get_writer(store).pending() == 2
        run.log_metric("c", 3.0)
    assert state["ids"][0] == state["ids"][1], "the failed batch must be replayed under its id"
    assert _count(store, run.id) == 3
    assert mloop.get_run(run.id).metrics == {"a": 1.0, "b": 2.0, "c": 3.0}


def test_log_metric_is_buffered_not_written_per_call(store, quiet_writer, monkeypatch):
    calls = []
    real = MetricRepo.write_batch
    monkeypatch.setattr(MetricRepo, "write_batch", lambda self, b, rows, also=None: (calls.append(len(rows)), real(self, b, rows, also))[1])
    with mloop.start_run() as run:
        for i in range(3000):
            run.log_metric("m", i, step=i)
    assert sum(calls) == 3000 and len(calls) <= 6, calls


def test_fork_child_logs_its_own_run_and_does_not_replay_the_parents_rows(store):
    with mloop.start_run(experiment="forked") as parent:
        writer = get_writer(store)
        # Hold the parent's flush lock across the fork: its rows stay buffered, and the child,
        # which inherits the lock held, must not need it.
        with writer._flush_lock:
            for i in range(500):
                parent.log_metric("p", float(i), step=i)
            assert writer.pending() == 500
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(read)
                    assert mloop.active_run() is None
                    with mloop.start_run(experiment="forked") as child:
                        for i in range(300):
                            child.log_metric("c", float(i), step=i)
                    os.write(write, child.id.encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(write)
            child_id = os.read(read, 100).decode()
            os.close(read)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert mloop.active_run() is parent
            assert writer.pending() == 500
        parent.log_metric("p", 500.0, step=500)
    assert _count(store, parent.id) == 501
    assert _count(store, child_id) == 300
    assert mloop.get_run(child_id).status == "FINISHED" and mloop.get_run(child_id).parent_id is None
    assert len(mloop.metric_history(parent.id, "p")) == 501


_EXIT_WITHOUT_END = """
import mloop
run = mloop.start_run(experiment="atexit")
for i in range(1500):
    run.log_metric("m", float(i), step=i)
print(run.id)
"""


def test_exit_without_end_run_flushes_and_finishes(store):
    proc = subprocess.run([sys.executable, "-c", _EXIT_WITHOUT_END], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    assert _count(store, run_id) == 1500
    assert mloop.get_run(run_id).status == "FINISHED"


def test_the_writer_thread_ends_when_idle(store):
    from support import wait_until

    with mloop.start_run() as run:
        run.log_metric("m", 1.0)
        writer = get_writer(store)
        assert writer._thread is not None
    wait_until(lambda: writer._thread is None, timeout=20, what="the idle writer thread to end")
    with mloop.start_run() as again:  # and it comes back on demand
        again.log_metric("m", 2.0)
    assert mloop.get_run(again.id).metrics == {"m": 2.0}


def test_to_dict_and_the_cli_show_nan_and_inf(store):
    import json

    from support import run_cli

    with mloop.start_run() as run:
        run.log_metrics({"nan": math.nan, "inf": math.inf, "ok": 0.5})
    data = mloop.get_run(run.id).to_dict()
    assert math.isnan(data["metrics"]["nan"]) and data["metrics"]["inf"] == math.inf
    shown = run_cli("runs", "show", run.id, "--json")
    assert shown.returncode == 0, shown.stderr
    metrics_ = json.loads(shown.stdout)["metrics"]
    assert metrics_ == {"nan": "NaN", "inf": "Infinity", "ok": 0.5}
