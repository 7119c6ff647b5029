"""The serving records in the store (SQLite and PostgreSQL): deployments, the prediction-log index
and read_predictions' time windows, feedback; and the log writer's bounds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from mloop.artifacts import get_blob_store
from mloop.serving.predlog import LogTarget, PredictionLogger, build_table
from mloop.store.serving import DeploymentRepo, FeedbackRepo, PredictionLogRepo, read_predictions

T0 = int(dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC).timestamp() * 1000)
TARGET = LogTarget(model="m", version=3, deployment="d1", columns=("x", "s"), arrow_types=(pa.float64(), None),
                   proba_columns=("proba_a", "proba_b"))


def items(n: int, start_ms: int, step_ms: int):
    return [(TARGET, f"r{i}", start_ms + i * step_ms, 1.5, {"x": [float(i)], "s": [f"v{i}"]}, 1,
             np.array(["a" if i % 2 else "b"]), np.array([[0.25, 0.75]])) for i in range(n)]


def test_log_files_index_and_time_windows(store):
    repo = PredictionLogRepo(store, get_blob_store())
    hour = 3_600_000
    for part in range(3):  # three files, an hour apart, 10 rows each a minute apart
        repo.write(build_table(TARGET, items(10, T0 + part * hour, 60_000)))
    keys = [f["key"] for f in repo.files("m")]
    assert len(keys) == 3 and all(k.startswith("predictions/m/2026-12-01/1") for k in keys)
    assert keys[0].split("/")[3] == "10" and keys[2].split("/")[3] == "12"
    full = read_predictions("m")
    assert full.num_rows == 30
    assert full.column_names[:6] == ["request_id", "ts", "model", "version", "deployment", "latency_ms"]
    assert full.column_names[6:] == ["x", "s", "prediction", "proba_a", "proba_b"]
    assert full.schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    # [start, end): 10:05 inclusive to 11:03 exclusive -> minutes 5..9 of file 0 and 0..2 of file 1
    window = read_predictions("m", dt.datetime(2026, 12, 1, 10, 5), "2026-12-01T11:03:00+00:00")
    ts = window.column("ts").cast("int64").to_pylist()
    assert len(ts) == 8 and min(ts) == T0 + 5 * 60_000 and max(ts) == T0 + hour + 2 * 60_000
    assert len(repo.files("m", T0 + 2 * hour, None)) == 1
    assert read_predictions("nobody").num_rows == 0
    assert repo.count("m") == 30


def test_unindexed_files_are_indexed_on_first_read(store):
    from mloop.store.serving import write_log_file

    blobs = get_blob_store()
    key, digest, start, end = write_log_file(blobs, build_table(TARGET, items(5, T0, 1000)))
    assert (start, end) == (T0, T0 + 4000)
    PredictionLogRepo._swept.clear()
    assert read_predictions("m").num_rows == 5
    (row,) = PredictionLogRepo(store, blobs).files("m")
    assert row["key"] == key and row["digest"] == digest and row["rows"] == 5 and row["version"] == 3


def test_deployments_and_feedback(store):
    deps = DeploymentRepo(store)
    d = deps.start(model_uri="m@champion", model="m", version=3, host="127.0.0.1", port=0, options={"a": 1})
    deps.set_port(d.id, 8123)
    deps.add_counts(d.id, 10, 1)
    deps.add_counts(d.id, 5, 0)
    deps.stop(d.id)
    got = deps.get(d.id)
    assert (got.port, got.rows_logged, got.dropped, got.status, got.options) == (8123, 15, 1, "stopped", {"a": 1})
    assert got.stop_ms >= got.start_ms
    fb = FeedbackRepo(store)
    assert fb.add([("r1", 1), ("r2", 0)], ts=T0) == 2
    fb.add([("r3", 1)], ts=T0 + 10)
    table = fb.read(T0, T0 + 10)
    assert table.column("request_id").to_pylist() == ["r1", "r2"] and table.column("label").to_pylist() == [1, 0]
    with pytest.raises(Exception, match="label"):
        fb.add([("r4", [1, 2])])


def test_logger_bounds_flushes_and_counts_drops():
    written: list[pa.Table] = []
    log = PredictionLogger(written.append, flush_rows=100, flush_seconds=60, queue_rows=6)
    accepted = [log.log(*it) for it in items(8, T0, 1)]
    assert accepted == [True] * 6 + [False] * 2
    rows, dropped = log.close()
    assert (rows, dropped) == (6, 2) and sum(t.num_rows for t in written) == 6
    log = PredictionLogger(written.append, flush_rows=4, flush_seconds=60)
    for it in items(4, T0, 1):
        log.log(*it)
    from serving_helpers import wait_until

    wait_until(lambda: log.rows_logged == 4, what="a flush at flush_rows")
    assert log.close() == (4, 0)

    def broken(table):
        raise OSError("disk full")

    log = PredictionLogger(broken, flush_rows=100, flush_seconds=60)
    for it in items(3, T0, 1):
        log.log(*it)
    assert log.close() == (0, 3)


def test_a_row_the_log_cannot_hold_is_dropped_and_the_queue_stays_whole():
    written: list[pa.Table] = []
    log = PredictionLogger(written.append, flush_rows=100, flush_seconds=60)
    good = items(3, T0, 1)
    assert log.log(*good[0]) and log.log(*good[1])
    target, rid, ts, lat, cols, n, pred, proba = good[2]
    assert not log.log(target, rid, ts, lat, {"x": [1.0]}, n, pred, proba)  # no "s": x extended, then KeyError
    assert log.log(*good[2])
    assert log.close() == (3, 1)
    (table,) = written
    assert table.column("request_id").to_pylist() == ["r0", "r1", "r2"]
    assert table.column("x").to_pylist() == [0.0, 1.0, 2.0] and table.column("s").to_pylist() == ["v0", "v1", "v2"]


def test_queued_rows_are_a_few_lists_not_objects_per_request():
    """What waits for a flush is kept column by column: the cyclic GC tracks a few lists, however many
    requests are queued (an object per request made every collection re-scan the whole queue)."""
    import gc

    log = PredictionLogger(lambda table: None, flush_rows=10**9, flush_seconds=3600)
    gc.collect()
    before = len(gc.get_objects())
    for it in items(5000, T0, 1):
        log.log(*it)
    gc.collect()
    grown = len(gc.get_objects()) - before
    assert grown < 50, f"{grown} more GC-tracked objects after queuing 5,000 requests"
    assert log.close() == (5000, 0)


@pytest.mark.parametrize("shape", ["one-row", "mixed", "blocks"])
def test_build_table_lays_rows_out_like_row_by_row(shape):
    rng = np.random.default_rng(3)
    its, want = [], []
    for i in range(40):
        n = 1 if shape == "one-row" else 1 + i % 3
        x = rng.normal(size=n)
        pred = np.array(["a" if v > 0 else "b" for v in x], dtype=object)
        proba = rng.random((n, 2))
        cols = {"x": x if i % 2 else x.tolist(), "s": [f"s{i}.{j}" for j in range(n)]}
        # proba as a model call's [n, 2] slice, or flat (any shape reshapes to [n, k])
        its.append((TARGET, f"r{i}", T0 + i, 0.5 + i, cols, n, pred, proba if i % 3 else proba.reshape(-1)))
        for j in range(n):
            want.append({"request_id": f"r{i}" if n == 1 else f"r{i}:{j}", "latency_ms": 0.5 + i, "x": x[j],
                         "s": f"s{i}.{j}", "prediction": pred[j], "proba_a": proba[j, 0], "proba_b": proba[j, 1]})
    if shape == "blocks":  # batches: runs of 3 requests logged as one entry, each row its id and latency
        from mloop.serving.predlog import request_ids

        blocks = []
        for k in range(0, len(its), 3):
            part = its[k:k + 3]
            rids = [r for it in part for r in request_ids(it[1], it[5])]
            lats = [it[3] for it in part for _ in range(it[5])]
            cols = {c: [v for it in part for v in list(it[4][c])] for c in ("x", "s")}
            pred = np.concatenate([it[6] for it in part])
            proba = np.concatenate([np.reshape(it[7], (it[5], 2)) for it in part])
            blocks.append((TARGET, rids, T0 + k, lats, cols, len(rids), pred, proba))
        its = blocks
    got = build_table(TARGET, its).to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert {k: g[k] for k in w} == w
        assert g["model"] == "m" and g["version"] == 3 and g["deployment"] == "d1"
