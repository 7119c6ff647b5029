"""Micro-batching: every caller gets exactly its own results, batches run on the worker thread (never
on the event loop), a failing item fails alone, requests of the next loop ticks join a batch, and
through HTTP the answers equal the model's own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading

import httpx
import numpy as np
import pytest
from serving_helpers import FEATURES, ServerThread, churn_frame

from mloop.serving import create_app
from mloop.serving.app import _cork, _uncork
from mloop.serving.batching import MicroBatcher


def run_batches(batcher: MicroBatcher, items: list, rows: list[int] | None = None) -> list:
    """Submit every item at once from one event loop; each caller's result or exception, in order."""
    async def main() -> list:
        rs = rows or [1] * len(items)
        return await asyncio.gather(*(batcher.submit(i, r) for i, r in zip(items, rs, strict=True)),
                                    return_exceptions=True)

    try:
        return asyncio.run(main())
    finally:
        batcher.close()


def test_each_caller_gets_its_own_results_from_the_worker_thread():
    seen_threads, calls = set(), []

    def run(items):
        seen_threads.add(threading.get_ident())
        calls.append(len(items))
        return [(i, i * i) for i in items]

    b = MicroBatcher(run, max_batch=16)
    out = run_batches(b, list(range(100)))
    assert out == [(i, i * i) for i in range(100)]
    assert sum(calls) == 100 and max(calls) <= 16 and len(calls) < 100  # coalesced, bounded
    assert b.batches == len(calls)
    assert threading.get_ident() not in seen_threads  # asyncio.run runs the loop on this thread


def test_rows_bound_batches_and_big_items_go_alone():
    calls = []

    def run(items):
        calls.append(list(items))
        return [-i for i in items]

    b = MicroBatcher(run, max_batch=10)
    sizes = [3, 3, 3, 3, 25, 1, 9, 2]
    out = run_batches(b, list(range(len(sizes))), sizes)
    assert out == [-i for i in range(len(sizes))]
    for batch in calls:
        assert len(batch) == 1 or sum(sizes[i] for i in batch) <= 10
    assert [4] in calls  # the 25-row item exceeds the bound alone


def test_a_failing_item_fails_alone():
    def run(items):
        if any(i % 7 == 3 for i in items):
            raise ValueError("a bad item in the batch")
        return [i + 0.5 for i in items]

    def run_one(item):
        if item % 7 == 3:
            raise ValueError(f"bad item {item}")
        return item + 0.5

    b = MicroBatcher(run, run_one=run_one)
    out = run_batches(b, list(range(50)))
    for i, got in enumerate(out):
        if i % 7 == 3:
            assert isinstance(got, ValueError) and str(got) == f"bad item {i}"
        else:
            assert got == i + 0.5


def test_http_batches_equal_the_model(churn_model):
    mv, pipe = churn_model
    df = churn_frame(500, seed=5)
    df.loc[df.index % 37 == 5, "income"] = None  # NaN: this estimator refuses it, so those fail alone
    bad = set(np.flatnonzero(df["income"].isna().to_numpy()))
    good = df.drop(index=sorted(bad))
    proba = pipe.predict_proba(good[FEATURES])
    want = dict(zip(good.index, zip(pipe.classes_[proba.argmax(axis=1)].tolist(), proba[:, 1], strict=True),
                    strict=True))
    app = create_app("churn@champion", batching=True, max_batch=32, reload_interval=0)
    batcher = app.state.serving.batcher
    local = threading.local()

    def call(i):
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=srv.url, timeout=60)
        row = df.iloc[i:i + 1][FEATURES].astype(object).where(df.iloc[i:i + 1][FEATURES].notna(), None)
        return i, local.c.post("/predict", json=row.to_dict("records"))

    with ServerThread(app) as srv:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(len(df))))
        metrics = httpx.get(f"{srv.url}/metrics").text
    for i, r in results:
        if i in bad:
            assert r.status_code == 422, r.text
        else:
            assert r.status_code == 200, r.text
            doc = r.json()
            assert doc["predictions"] == [want[i][0]]
            assert doc["probabilities"][0]["1"] == pytest.approx(want[i][1], rel=1e-9)
    ok = len(df) - len(bad)
    labels = [want[i][0] for i in good.index]
    assert f'mloop_requests_total{{route="predict",version="1"}} {float(ok)}' in metrics
    assert f'mloop_rows_total{{version="1"}} {float(ok)}' in metrics
    assert f'mloop_request_latency_seconds_count{{route="predict"}} {float(ok)}' in metrics
    for label in set(labels):
        assert f'mloop_predictions_total{{label="{label}",version="1"}} {float(labels.count(label))}' in metrics
    assert batcher.batches < len(df)  # some requests shared a call


def test_cork_and_uncork_a_real_tcp_socket():
    if not hasattr(socket, "TCP_CORK"):
        pytest.skip("TCP_CORK is Linux-only")
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    conn, _ = server.accept()

    class Transport:
        def get_extra_info(self, name):
            return conn if name == "socket" else None

    class Cycle:
        transport = Transport()

        async def send(self, message):
            pass

    try:
        sock = _cork(Cycle().send)
        assert sock is conn and conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
        conn.sendall(b"head")
        conn.sendall(b"body")
        _uncork(sock)
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
        got = b""
        while len(got) < 8:
            got += client.recv(16)
        assert got == b"headbody"
        assert _cork(lambda message: None) is None  # not uvicorn's send: nothing to cork
        conn.close()
        _uncork(sock)  # a closed socket: no error
    finally:
        client.close()
        server.close()


def test_a_batch_waits_for_the_requests_of_the_next_poll():
    calls = []

    def run(items):
        calls.append(list(items))
        return list(items)

    b = MicroBatcher(run)

    async def late(i):
        await asyncio.sleep(0)  # arrives one loop tick after the first (as from the next socket poll)
        return await b.submit(i, 1)

    async def main():
        return await asyncio.gather(b.submit(0, 1), late(1))

    try:
        assert asyncio.run(main()) == [0, 1]
    finally:
        b.close()
    assert calls == [[0, 1]]
