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
import orjson
import pytest
from serving_helpers import FEATURES, ServerThread, churn_frame, register, wait_until

from mloop.serving import create_app
from mloop.serving.app import _one_write
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


def test_batches_log_each_answered_row_once_with_its_own_values(churn_df):
    """Requests of 1-3 rows share batches (and, with a canary, batches of two versions); rows that
    make a batch fail are retried alone: the log holds each answered row once, under its request's
    id, with its own inputs, outputs and version, and nothing of the refused requests."""
    from mloop.serving import read_predictions

    _, pipe1 = register("churn", churn_df, alias="champion")
    _, pipe2 = register("churn", churn_df.iloc[::-1], C=0.05)
    pipes = {1: pipe1, 2: pipe2}
    df = churn_frame(400, seed=11)
    sizes = [1 + i % 3 for i in range(150)]
    starts = np.cumsum([0, *sizes[:-1]])
    bad = {i for i in range(150) if i % 23 == 4}  # a NaN income: the estimator refuses those
    app = create_app("churn@champion", challenger="churn/2", canary=0.3, batching=True, max_batch=64,
                     reload_interval=0)
    local = threading.local()

    def call(i):
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=srv.url, timeout=60)
        rows = df.iloc[starts[i]:starts[i] + sizes[i]][FEATURES].astype(object)
        if i in bad:
            rows.iloc[0, FEATURES.index("income")] = None
        return i, local.c.post("/predict", json=rows.to_dict("records"), headers={"x-request-id": f"req-{i}"})

    with ServerThread(app) as srv:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = dict(pool.map(call, range(150)))
    assert app.state.serving.batcher.batches < 150  # requests shared calls
    assert {i for i, r in results.items() if r.status_code == 422} == bad
    log = read_predictions("churn").to_pandas().set_index("request_id")
    want_ids = [f"req-{i}" if sizes[i] == 1 else f"req-{i}:{j}"
                for i in sorted(set(range(150)) - bad) for j in range(sizes[i])]
    assert log.index.is_unique and sorted(log.index) == sorted(want_ids)
    versions = set()
    for i in sorted(set(range(150)) - bad):
        r = results[i]
        assert r.status_code == 200, r.text
        version = r.json()["version"]
        versions.add(version)
        rows = df.iloc[starts[i]:starts[i] + sizes[i]][FEATURES]
        proba = pipes[version].predict_proba(rows)
        ids = [f"req-{i}"] if sizes[i] == 1 else [f"req-{i}:{j}" for j in range(sizes[i])]
        got = log.loc[ids]
        assert got["version"].tolist() == [version] * sizes[i]
        assert got["income"].tolist() == rows["income"].tolist() and got["plan"].tolist() == rows["plan"].tolist()
        assert got["prediction"].tolist() == r.json()["predictions"] == pipe1.classes_[proba.argmax(axis=1)].tolist()
        np.testing.assert_allclose(got["proba_1"].to_numpy(), proba[:, 1], rtol=1e-9)
        assert (got["latency_ms"] > 0).all()
    assert versions == {1, 2}


@pytest.mark.parametrize("batching", [True, False])
def test_metrics_count_requests_rows_and_labels(churn_model, batching):
    """With batching the batch counts its requests, without it each request does: the same numbers."""
    mv, pipe = churn_model
    df = churn_frame(40, seed=13)
    app = create_app("churn@champion", batching=batching, reload_interval=0)
    labels = []
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        for i in range(10):  # 1-row /predict calls, then 2-row /invocations calls
            r = c.post("/predict", json=df.iloc[i:i + 1][FEATURES].to_dict("records"))
            assert r.status_code == 200, r.text
            labels += r.json()["predictions"]
        for i in range(10, 40, 2):
            r = c.post("/invocations", json={"dataframe_records": df.iloc[i:i + 2][FEATURES].to_dict("records")})
            assert r.status_code == 200, r.text
            labels += r.json()["predictions"]
        text = c.get("/metrics").text
    assert labels == pipe.classes_[pipe.predict_proba(df[FEATURES]).argmax(axis=1)].tolist()
    assert 'mloop_requests_total{route="predict",version="1"} 10.0' in text
    assert 'mloop_requests_total{route="invocations",version="1"} 15.0' in text
    assert 'mloop_request_latency_seconds_count{route="invocations"} 15.0' in text
    assert 'mloop_rows_total{version="1"} 40.0' in text
    for label in set(labels):
        assert f'mloop_predictions_total{{label="{label}",version="1"}} {float(labels.count(label))}' in text


def test_one_write_joins_a_responses_writes_and_closes_after_them():
    events = []

    class Transport:
        def write(self, data):
            events.append(("write", data))

        def close(self):
            events.append(("close",))

        def is_closing(self):
            return False

        def get_extra_info(self, name):
            return f"extra {name}"

    class Cycle:  # what uvicorn's per-request cycle does: writes through `self.transport`
        def __init__(self):
            self.transport = Transport()

        async def send(self, part, close=False):
            assert self.transport.get_extra_info("peername") == "extra peername"  # passed through
            self.transport.write(part)
            if close:
                self.transport.close()

    async def respond(cycle):
        with _one_write(cycle.send):
            await cycle.send(b"head")
            await cycle.send(b"body", close=True)
            assert events == []  # nothing leaves before both parts are there

    cycle = Cycle()
    real = cycle.transport
    asyncio.run(respond(cycle))
    assert events == [("write", b"headbody"), ("close",)]
    assert cycle.transport is real

    async def plain(message):
        return None

    async def other_server():
        with _one_write(plain):  # not uvicorn's send: nothing to gather
            await plain({})

    asyncio.run(other_server())


def _read_response(sock: socket.socket, buf: bytes) -> tuple[dict, bytes, bytes]:
    """One HTTP/1.1 response off `sock`: (headers, body, the bytes after it)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-headers: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200"), lines[0]
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return headers, rest[:length], rest[length:]


@pytest.mark.parametrize(("loop", "http"), [("uvloop", "httptools"), ("asyncio", "h11")])
def test_hot_path_answers_whole_on_keep_alive_and_close(churn_model, loop, http):
    import uvicorn

    mv, pipe = churn_model
    df = churn_frame(3, seed=9)
    want = pipe.classes_[pipe.predict_proba(df[FEATURES]).argmax(axis=1)].tolist()
    app = create_app("churn@champion", reload_interval=0)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                           access_log=False, loop=loop, http=http))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="server start")
        port = server.servers[0].sockets[0].getsockname()[1]
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        buf, got = b"", []
        for i in range(3):  # two keep-alive requests, then one asking to close
            body = orjson.dumps(df.iloc[i:i + 1][FEATURES].to_dict("records"))
            close = b"connection: close\r\n" if i == 2 else b""
            sock.sendall(b"POST /predict HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n" + close
                         + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            headers, payload, buf = _read_response(sock, buf)
            assert headers["x-mloop-model-version"] == "1"
            got.append(orjson.loads(payload)["predictions"][0])
        assert got == want
        assert buf == b"" and sock.recv(1) == b""  # the server closed after the last answer
        sock.close()
    finally:
        server.should_exit = True
        thread.join(60)


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
