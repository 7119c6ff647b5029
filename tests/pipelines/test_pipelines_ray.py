"""The Ray executor on the shared session cluster (5 tests use it: a ray:// client run, equal results to local runs on
SQLite and PostgreSQL, a killed worker retried, batch scoring on Ray Data); refused and unreachable
addresses and a missing Ray need no cluster."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import mloop
from mloop.errors import InvalidInput, ServiceUnavailable
from mloop.store.db import get_store
from mloop.store.pipelines import PipelineRunRepo

FLOW = '''
import mloop
import numpy as np

@mloop.step(outputs=("X", "y"), resources={"cpus": 1, "memory": "64MB"})
def make(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(int)

@mloop.step
def moments(X, power: int):
    return (X ** power).mean(axis=0)

@mloop.step
def summary(parts: list, y):
    run = mloop.start_run()
    run.log_metric("positives", int(y.sum()))
    return {"parts": [p.round(10).tolist() for p in parts], "positives": int(y.sum()), "run": mloop.active_run().id}

@mloop.pipeline(name="rayflow")
def rayflow(n: int = 200, seed: int = 1):
    X, y = make(n, seed)
    return summary([moments(X, p) for p in (1, 2, 3)], y)
'''


@pytest.mark.xdist_group("ray")
def test_ray_runs_equal_local_runs(ray_cluster, tmp_path, tracking_uri):
    (tmp_path / "rayflow_mod.py").write_text(FLOW)  # workers cannot import it: pickled by value
    pipeline = mloop.pipelines.load_pipeline(str(tmp_path / "rayflow_mod.py") + ":rayflow")
    local = pipeline.run(n=200, seed=1, cache=False)
    remote = pipeline.run(n=200, seed=1, executor="ray", cache=False)
    assert remote.status == "COMPLETED" and remote.executor == "ray"
    a, b = local.outputs["output"], remote.outputs["output"]
    assert a["parts"] == b["parts"] and a["positives"] == b["positives"]
    assert [s.outputs for s in local.steps][:4] == [s.outputs for s in remote.steps][:4]  # same digests
    child = mloop.get_run(remote.step("summary").run_id)
    assert b["run"] == child.id and child.parent_id == remote.id
    assert child.metrics["positives"] == a["positives"]
    cached = pipeline.run(n=200, seed=1, executor="ray")
    assert set(cached.cached_steps) == {s.name for s in cached.steps}


@mloop.step(retries=0)
def _die_once(marker: str):
    if not os.path.exists(marker):
        Path(marker).write_text("1")
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@mloop.pipeline(name="raykill")
def _raykill(marker: str):
    return _die_once(marker)


@pytest.mark.xdist_group("ray")
def test_ray_worker_killed_mid_step_is_retried(ray_cluster, tmp_path):
    run = _raykill.run(marker=str(tmp_path / "marker"), executor="ray")
    assert run.status == "COMPLETED" and run.outputs["output"] == "survived"
    assert run.step("_die_once").attempts == 2


@pytest.mark.xdist_group("ray")
def test_a_second_ray_address_in_one_process_is_refused_not_ignored(ray_cluster):
    import socket

    from mloop.pipelines.ray_executor import RayExecutor

    RayExecutor().start()  # joins RAY_ADDRESS, the session cluster
    RayExecutor(address=ray_cluster).start()  # the same address again: fine
    # another reachable address: a plain listening socket (a bare TCP probe of the cluster's own
    # Ray Client port can upset its proxier, which the ray:// test below then needs)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        other = f"ray://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(InvalidInput, match="already connected to the Ray cluster at") as info:
            RayExecutor(address=other).start()
    assert other in str(info.value) and ray_cluster in str(info.value)


def test_ray_client_refuses_an_embedded_store_before_any_step():  # no cluster needed
    with pytest.raises(InvalidInput, match="embedded SQLite store"):
        _raykill.run(marker="x", executor="ray://127.0.0.1:10001")
    assert PipelineRunRepo(get_store()).list() == []


def test_unreachable_ray_address_names_it_and_records_nothing(monkeypatch):  # no cluster needed
    from support import free_port

    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(ServiceUnavailable, match=address):
        _raykill.run(marker="x", executor="ray")
    assert PipelineRunRepo(get_store()).list() == []
    assert mloop.search_runs() == []


class _FlakyClientRay:
    """Stands in for `ray` where a Ray Client head fails the first `fails` connections the way a busy
    head does (its per-connection server did not come up in time)."""

    def __init__(self, fails: int) -> None:
        self.fails, self.calls = fails, []

    def is_initialized(self) -> bool:
        return False

    def init(self, address=None, **kwargs):  # noqa: ANN001, ANN003
        self.calls.append(address)
        if len(self.calls) <= self.fails:
            raise ConnectionAbortedError("Initialization failure from server:\nTraceback (most recent call last):\n"
                                         "  ...\nRuntimeError: Proxy failed to Connect to backend!")


@pytest.mark.parametrize("fails", [1, 2, 3])
def test_a_failed_ray_client_connection_is_retried_then_named(fails, monkeypatch, caplog):
    import socket

    from mloop.pipelines import ray_executor

    monkeypatch.setattr(ray_executor, "_connected_to", None)
    with socket.create_server(("127.0.0.1", 0)) as listener:  # reachable, so the TCP probe passes
        address = f"ray://127.0.0.1:{listener.getsockname()[1]}"
        executor = ray_executor.RayExecutor(address=address)
        executor._ray = flaky = _FlakyClientRay(fails)
        if fails < ray_executor.CLIENT_CONNECT_ATTEMPTS:
            executor.start()
            assert flaky.calls == [address] * (fails + 1) and ray_executor._connected_to == address
        else:
            with pytest.raises(ServiceUnavailable) as info:
                executor.start()
            assert len(flaky.calls) == ray_executor.CLIENT_CONNECT_ATTEMPTS
            assert address in str(info.value) and "Proxy failed to Connect to backend" in str(info.value)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == min(fails, ray_executor.CLIENT_CONNECT_ATTEMPTS - 1)
    assert all("Proxy failed to Connect to backend" in r.getMessage() for r in retries)


def test_missing_ray_names_the_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(mloop.errors.MissingDependency, match=r"pip install 'mloop\[ray\]'"):
        mloop.pipelines.get_executor("ray")


@pytest.mark.xdist_group("ray")
def test_predict_on_ray_equals_in_process_scoring(ray_cluster, tmp_path):
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    from support import invoke_cli

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(3000, 3)), columns=["a", "b", "c"]).assign(id=np.arange(3000))
    model = LogisticRegression().fit(frame[["a", "b", "c"]], (frame["a"] > 0).astype(int))
    mloop.models.log_model(model, "rayscore", register=True, input_example=frame[["a", "b", "c"]].head())
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet", row_group_size=700)
    local = invoke_cli("predict", "rayscore/1", "-i", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "local.parquet"),
                       "--keep", "id", "--batch-rows", "500", "-q")
    assert local.returncode == 0, local.stderr
    remote = invoke_cli("predict", "rayscore/1", "-i", str(tmp_path / "in.parquet"), "-o", str(tmp_path / "ray.parquet"),
                        "--keep", "id", "--batch-rows", "500", "--executor", "ray")
    assert remote.returncode == 0, remote.stderr
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    assert len(b) == 3000 and list(b.columns) == list(a.columns)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.xdist_group("ray")
def test_ray_client_address_runs_steps_on_the_cluster(ray_cluster, tmp_path, pg_database, monkeypatch):
    """`ray://host:port` through the cluster's Ray Client server, from a fresh CLI process, with the
    metadata store on PostgreSQL: same outputs as an in-process run."""
    from support import run_cli

    monkeypatch.setenv("MLOOP_TRACKING_URI", pg_database)
    mloop.config.reset()
    (tmp_path / "clientflow_mod.py").write_text(FLOW)
    target = str(tmp_path / "clientflow_mod.py") + ":rayflow"
    local = mloop.pipelines.load_pipeline(target).run(n=120, seed=3, cache=False)
    client = os.environ["MLOOP_TEST_RAY_CLIENT"]
    out = run_cli("pipeline", "run", target, "-p", "n=120", "-p", "seed=3", "--executor", client, "--no-cache",
                  "--json", env={"RAY_ADDRESS": ""}, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, _client_failure(out.stderr)
    ids = [r["id"] for r in mloop.pipelines.list_runs(pipeline="rayflow") if r["id"] != local.id]
    assert len(ids) == 1
    remote = mloop.pipelines.get_run(ids[0])
    assert remote.status == "COMPLETED" and remote.executor == client
    assert remote.outputs["output"]["parts"] == local.outputs["output"]["parts"]
    assert remote.outputs["output"]["positives"] == local.outputs["output"]["positives"]


def _client_failure(stderr: str) -> str:
    """What a failed ray:// run leaves to read: its stderr, its traceback file and the head's Ray Client logs."""
    import re

    parts = [stderr[-3000:]]
    found = re.search(r"\(traceback in (\S+)\)", stderr)
    if found and Path(found.group(1)).is_file():
        parts.append(Path(found.group(1)).read_text()[-3000:])
    for log in sorted(Path("/tmp/ray/session_latest/logs").glob("ray_client_server*.err")):
        parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-2000:])
    return "\n".join(parts)
