"""Runs: params write-once, tags, status on exit, nesting, resume, experiments created under a
race, soft delete and restore, the user and int-ms timestamps on every write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

import mloop
from mloop.artifacts import get_blob_store
from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.store.lineage import blob_refs
from mloop.store.tracking import (
    ExperimentRepo,
    RunArtifactRepo,
    experiments,
    metric_batches,
    params,
    run_artifacts,
    runs,
    tags,
)
from support import wait_until


def _rows(store, table, **where):
    query = select(table)
    for key, value in where.items():
        query = query.where(table.c[key] == value)
    with store.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def test_params_are_write_once_and_conflicts_name_both_values(store):
    with mloop.start_run(params={"C": 1.0}) as run:
        run.log_param("C", "1.0")  # the same str() value again: nothing happens
        run.log_params({"C": 1.0, "kernel": "rbf"})
        with pytest.raises(Conflict) as info:
            run.log_param("C", 2)
        assert "'1.0'" in str(info.value) and "'2'" in str(info.value) and "'C'" in str(info.value)
        with pytest.raises(Conflict):  # a batch with one clash writes none of its new keys
            run.log_params({"gamma": 0.1, "kernel": "linear"})
        mloop.log_param("depth", 3)
    assert mloop.get_run(run.id).params == {"C": "1.0", "kernel": "rbf", "depth": "3"}
    assert {r["key"]: r["value"] for r in _rows(store, params, run_id=run.id)} == {
        "C": "1.0", "kernel": "rbf", "depth": "3"}


def test_tags_overwrite(store):
    with mloop.start_run(tags={"team": "growth"}) as run:
        run.set_tag("team", "risk")
        mloop.set_tags({"stage": "dev", "team": "ops"})
        assert run.tags == {"team": "ops", "stage": "dev"}
    assert mloop.get_run(run.id).tags == {"team": "ops", "stage": "dev"}
    assert len(_rows(store, tags, run_id=run.id)) == 2


def test_status_finished_failed_killed(store):
    with mloop.start_run() as ok:
        pass
    with pytest.raises(ValueError), mloop.start_run() as failed:
        raise ValueError("bad batch size 0")
    with pytest.raises(KeyboardInterrupt), mloop.start_run() as killed:
        raise KeyboardInterrupt
    assert mloop.get_run(ok.id).status == "FINISHED"
    got = mloop.get_run(failed.id)
    assert got.status == "FAILED" and "ValueError: bad batch size 0" in got.error
    assert mloop.get_run(killed.id).status == "KILLED"
    assert mloop.active_run() is None
    for run_id in (ok.id, failed.id, killed.id):
        assert mloop.get_run(run_id).end_time is not None


def test_plain_calls_and_end_run(store):
    run = mloop.start_run(experiment="plain", name="first")
    assert mloop.active_run() is run
    mloop.log_metric("loss", 0.5)
    mloop.end_run()
    assert mloop.active_run() is None
    got = mloop.get_run(run.id)
    assert (got.name, got.experiment, got.status, got.metrics) == ("first", "plain", "FINISHED", {"loss": 0.5})
    with pytest.raises(InvalidInput, match="no active run"):
        mloop.log_metric("loss", 1.0)
    mloop.end_run()  # nothing active: no-op


def test_nested_runs_and_conflict_without_nested(store):
    with mloop.start_run(experiment="grid") as parent:
        with pytest.raises(Conflict, match=parent.id):
            mloop.start_run()
        with mloop.start_run(nested=True, name="child") as child:
            assert mloop.active_run() is child
            child.log_metric("auc", 0.8)
        assert mloop.active_run() is parent
    got = mloop.get_run(child.id)
    assert got.parent_id == parent.id and got.experiment == "grid" and got.status == "FINISHED"
    assert got.environment == mloop.get_run(parent.id).environment
    assert mloop.search_runs(filter=f"attributes.parent_id = '{parent.id}'")[0].id == child.id


def test_resume_by_run_id(store):
    with mloop.start_run(params={"a": 1}) as run:
        run.log_metric("loss", 1.0, step=1)
    first_end = mloop.get_run(run.id).end_time
    with mloop.start_run(run_id=run.id) as again:
        assert again.id == run.id and again.params == {"a": "1"}
        assert mloop.get_run(run.id).status == "RUNNING" and mloop.get_run(run.id).end_time is None
        again.log_metric("loss", 0.5, step=2)
        with pytest.raises(Conflict):
            again.log_param("a", 2)
    got = mloop.get_run(run.id)
    assert got.status == "FINISHED" and got.end_time >= first_end and got.metrics == {"loss": 0.5}
    assert [h["value"] for h in mloop.metric_history(run.id, "loss")] == [1.0, 0.5]
    with pytest.raises(NotFound, match="nope"):
        mloop.start_run(run_id="nope")
    mloop.delete_run(run.id)
    with pytest.raises(Conflict, match="restore"):
        mloop.start_run(run_id=run.id)


_CREATE_AT_GO = """
import sys, time, pathlib
import mloop, mloop.store
mloop.store.get_store()
pathlib.Path(sys.argv[1]).touch()
deadline = time.monotonic() + 60
while not pathlib.Path(sys.argv[2]).exists() and time.monotonic() < deadline:
    time.sleep(0.002)
with mloop.start_run(experiment=sys.argv[3]) as run:
    pass
print(run.experiment_id)
"""


def test_concurrent_create_of_one_experiment(store, tmp_path):
    """Two processes create "race" at once and get one experiment; two others create distinct
    experiments at the same moment and get distinct ids."""
    go = tmp_path / "go"
    names = ["race", "race", "solo-1", "solo-2"]
    procs = [subprocess.Popen([sys.executable, "-c", _CREATE_AT_GO, str(tmp_path / f"r{i}"), str(go), name],
                              env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, name in enumerate(names)]
    try:
        wait_until(lambda: all((tmp_path / f"r{i}").exists() for i in range(4)), timeout=60, what="ready")
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    ids = [out.strip() for out, _ in outs]
    assert ids[0] == ids[1] and len(set(ids)) == 3
    assert [e["id"] for e in _rows(store, experiments, name="race")] == [ids[0]]
    assert len(mloop.search_runs(experiment="race")) == 2
    assert {e["name"]: e["id"] for e in ExperimentRepo(store).list()} == dict(zip(names, ids, strict=True))


def test_soft_delete_and_restore_runs_and_experiments(store):
    with mloop.start_run(experiment="keep") as kept:
        pass
    with mloop.start_run(experiment="drop") as dropped:
        pass
    mloop.delete_run(kept.id)
    assert [r.id for r in mloop.search_runs()] == [dropped.id]
    assert {r.id for r in mloop.search_runs(include_deleted=True)} == {kept.id, dropped.id}
    assert mloop.get_run(kept.id).id == kept.id  # still readable by id
    mloop.restore_run(kept.id)
    assert {r.id for r in mloop.search_runs()} == {kept.id, dropped.id}

    repo = ExperimentRepo(store)
    mloop.tracking.delete_experiment("drop")
    assert [e["name"] for e in repo.list()] == ["keep"]
    assert [r.id for r in mloop.search_runs()] == [kept.id]
    assert [r.id for r in mloop.search_runs(experiment="drop")] == [dropped.id]  # named: still searchable
    with pytest.raises(Conflict, match="restore"):
        mloop.start_run(experiment="drop")
    mloop.tracking.restore_experiment("drop")
    with mloop.start_run(experiment="drop"):
        pass
    assert len(mloop.search_runs(experiment="drop")) == 2
    with pytest.raises(NotFound, match="ghost"):
        mloop.delete_run("ghost")
    with pytest.raises(NotFound, match="ghost"):
        mloop.tracking.delete_experiment("ghost")


def test_user_and_int_ms_timestamps_on_every_write(store, monkeypatch, tmp_path):
    monkeypatch.setenv("MLOOP_USER", "alice")
    before = int(time.time() * 1000)
    (tmp_path / "notes.txt").write_text("hello")
    with mloop.start_run(experiment="who", params={"p": 1}, tags={"t": 1}) as run:
        run.log_metric("m", 1.0)
        run.set_tag("u", "x")
        run.log_artifact(tmp_path / "notes.txt")
    after = int(time.time() * 1000)

    def stamped(row, *cols):
        for col in cols:
            assert type(row[col]) is int and before <= row[col] <= after, (col, row[col])

    exp = _rows(store, experiments, name="who")[0]
    assert exp["user"] == "alice"
    stamped(exp, "created_ms", "updated_ms")
    row = _rows(store, runs, id=run.id)[0]
    assert row["user"] == "alice"
    stamped(row, "start_ms", "end_ms", "heartbeat_ms")
    for table in (params, tags, run_artifacts):
        found = _rows(store, table, run_id=run.id)
        assert found and all(r["user"] == "alice" for r in found), table.name
        for r in found:
            stamped(r, "ts")
    batches = _rows(store, metric_batches)
    assert batches and all(b["user"] == "alice" for b in batches)
    refs = _rows(store, blob_refs, owner_id=run.id)
    assert refs and all(r["user"] == "alice" for r in refs)
    got = mloop.get_run(run.id)
    assert got.user == "alice" and type(got.start_time) is int and type(got.end_time) is int


def test_artifacts_files_folders_text_and_dict(store, tmp_path):
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.txt").write_text("B")
    with mloop.start_run() as run:
        assert run.log_artifact(folder) == "plots"
        run.log_text("hi", "notes/readme.md")
        run.log_dict({"k": [1, 2]}, "cfg.json")
    logged = {a["path"]: a for a in RunArtifactRepo(store).list(run.id)}
    assert set(logged) == {"plots", "notes/readme.md", "cfg.json"}
    assert logged["plots"]["is_dir"] and logged["plots"]["size"] == 2
    assert logged["notes/readme.md"]["size"] == 2 and not logged["notes/readme.md"]["is_dir"]
    blobs = get_blob_store()
    assert json.loads(blobs.get(logged["cfg.json"]["digest"])) == {"k": [1, 2]}
    assert sorted(e.path for e in blobs.read_manifest(logged["plots"]["digest"])) == ["a.txt", "sub/b.txt"]
    assert {r["digest"] for r in _rows(store, blob_refs, owner_id=run.id)} == {a["digest"] for a in logged.values()}
    with pytest.raises(InvalidInput, match="does not exist"), mloop.start_run() as other:
        other.log_artifact(tmp_path / "missing.bin")


def test_bad_keys_and_values_are_invalid_input(store):
    with mloop.start_run() as run:
        with pytest.raises(InvalidInput, match="metric 'm' must be a number"):
            run.log_metric("m", "high")
        with pytest.raises(InvalidInput, match="key"):
            run.log_param("", 1)
        with pytest.raises(InvalidInput):
            run.set_tag("x" * 300, 1)
    with pytest.raises(InvalidInput):
        mloop.start_run(experiment="")


@pytest.fixture
def restore_default_experiment():
    from mloop.tracking import fluent

    token = fluent._experiment.set(None)
    yield
    fluent._experiment.reset(token)


def test_set_experiment_threads_and_to_pandas(store, restore_default_experiment):
    mloop.set_experiment("default-here")
    seen = {}

    def in_thread():
        seen["active"] = mloop.active_run()
        with mloop.start_run(experiment="threaded") as r:  # a thread has its own active-run stack
            seen["run"] = r.id

    with mloop.start_run(params={"C": 0.5}) as run:
        run.log_metric("auc", 0.7)
        import threading

        t = threading.Thread(target=in_thread)
        t.start()
        t.join(timeout=60)
    assert seen["active"] is None and mloop.get_run(seen["run"]).experiment == "threaded"
    assert mloop.get_run(run.id).experiment == "default-here"
    frame = mloop.search_runs(experiment="default-here").to_pandas()
    assert list(frame["run_id"]) == [run.id]
    assert frame.loc[0, "params.C"] == "0.5" and frame.loc[0, "metrics.auc"] == 0.7
    assert frame.loc[0, "status"] == "FINISHED" and str(frame["start_time"].dtype).startswith("datetime64")


def test_log_figure_saves_in_the_suffix_format(store):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with mloop.start_run() as run:
        run.log_figure(fig, "plots/roc.png")
        mloop.log_figure(fig, "plots/roc.svg")
    plt.close(fig)
    logged = {a["path"]: a["digest"] for a in RunArtifactRepo(store).list(run.id)}
    assert get_blob_store().get(logged["plots/roc.png"]).startswith(b"\x89PNG")
    assert b"<svg" in get_blob_store().get(logged["plots/roc.svg"])


def test_an_explicit_end_inside_the_block_is_kept(store):
    with mloop.start_run() as run:
        run.end("KILLED")
    assert mloop.get_run(run.id).status == "KILLED"


_DIES = """
import mloop
run = mloop.start_run(experiment="dies")
print(run.id, flush=True)
raise RuntimeError("out of memory in epoch 3")
"""


def test_a_script_dying_of_an_exception_fails_its_open_run(store):
    proc = subprocess.run([sys.executable, "-c", _DIES], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "out of memory" in proc.stderr
    got = mloop.get_run(proc.stdout.strip())
    assert got.status == "FAILED" and "RuntimeError: out of memory in epoch 3" in got.error


def test_an_experiment_named_like_another_ones_id_is_its_own(store):
    with mloop.start_run(experiment="first") as a:
        pass
    with mloop.start_run(experiment=a.experiment_id) as b:  # a new experiment whose *name* is "1"
        pass
    assert b.experiment == a.experiment_id and b.experiment_id != a.experiment_id


def test_start_run_checks_keys_and_name_and_resume_logs_params(store):
    with pytest.raises(InvalidInput, match="param key"):
        mloop.start_run(params={"k" * 251: 1})
    with pytest.raises(InvalidInput, match="run name"):
        mloop.start_run(name="n" * 257)
    assert mloop.search_runs() == []  # nothing half-created
    with mloop.start_run(params={"a": 1}) as run:
        pass
    with mloop.start_run(run_id=run.id, params={"a": 1, "b": 2}, tags={"phase": "2"}):
        pass
    got = mloop.get_run(run.id)
    assert got.params == {"a": "1", "b": "2"} and got.tags == {"phase": "2"}
    with pytest.raises(Conflict, match="'1'"):
        mloop.start_run(run_id=run.id, params={"a": 3})
    assert mloop.get_run(run.id).status == "FINISHED" and mloop.active_run() is None
