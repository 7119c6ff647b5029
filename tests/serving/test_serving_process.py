"""`mloop serve` as a real process: bad input under load, SIGTERM draining into the Deployment row,
`--workers` with multiprocess metrics, and the bind/token guard."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import numpy as np
import orjson
import pytest
from serving_helpers import NUMERIC, churn_frame, raw_post_many, register_numeric

from mloop.serving import read_predictions
from mloop.store import get_store
from mloop.store.serving import DeploymentRepo


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "mloop", "serve", *args, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()  # blocks until the first line or exit; the process has its own deadline below
    if not line.startswith("listening on http://"):
        proc.kill()
        raise AssertionError(f"server did not announce itself: {line!r} {proc.stderr.read()[-3000:]}")
    url = line.split()[-1]
    with httpx.Client(base_url=url, timeout=5) as c:
        for _ in range(3000):
            try:
                if c.get("/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read()[-3000:])
        else:
            raise AssertionError("server never became ready")
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, proc.stderr.read()[-3000:]


def malformed(i: int, row: dict) -> tuple[bytes, str]:
    kind = i % 4
    if kind == 0:
        return b'[{"age": 31, "income": ', "bad JSON"
    if kind == 1:
        return orjson.dumps([{**row, "income": "a lot"}]), "wrong type"
    if kind == 2:
        return orjson.dumps([{k: v for k, v in row.items() if k != "tenure"}]), "missing column"
    return orjson.dumps([row] * 3000), "oversized"


def test_bad_input_under_load_then_sigterm_accounts_for_every_row(churn_df):
    mv, pipe = register_numeric("churn", churn_df)
    df = churn_frame(5000, seed=3)
    rows = df[NUMERIC].to_dict("records")
    proba = pipe.predict_proba(df[NUMERIC])
    labels = pipe.classes_[proba.argmax(axis=1)]
    bad = set(range(7, 5000, 100))  # 50 of 5,000: 1%
    bodies, reasons = [], {}
    for i, row in enumerate(rows):
        if i in bad:
            body, reasons[f"m{i}"] = malformed(i // 100, row)
            bodies.append((f"m{i}", body))
        else:
            bodies.append((f"v{i}", orjson.dumps([row])))
    proc, url = start_server("churn@champion", "--max-body", "65536")
    try:
        host, port = url.removeprefix("http://").split(":")
        raw = asyncio.run(raw_post_many(host, int(port), "/predict", bodies, 32))
        results = {rid: (status, orjson.loads(body) if status > 0 else {"transport": body.decode()})
                   for rid, (status, body) in raw.items()}
    finally:
        stop_server(proc)
    assert len(results) == 5000
    assert [r for r, (s, _) in results.items() if s == -1] == []
    statuses = {s for s, _ in results.values()}
    assert 500 not in statuses and statuses <= {200, 400, 413, 422}
    for rid, (status, doc) in results.items():
        i = int(rid[1:])
        if rid.startswith("m"):
            expected = {"bad JSON": 400, "wrong type": 422, "missing column": 422, "oversized": 413}[reasons[rid]]
            assert status == expected, (rid, reasons[rid], doc)
            assert doc["message"], doc
        else:
            assert status == 200, (rid, doc)
            assert doc["predictions"] == [labels[i]] and doc["request_id"] == rid
            assert doc["probabilities"][0]["1"] == pytest.approx(proba[i, 1], rel=1e-9)
    (dep,) = DeploymentRepo(get_store()).list(model="churn")
    answered = 5000 - len(bad)
    assert dep.status == "stopped" and dep.stop_ms is not None
    assert dep.rows_logged + dep.dropped == answered and dep.dropped == 0
    log = read_predictions("churn")
    assert sorted(log.column("request_id").to_pylist()) == sorted(r for r in results if r.startswith("v"))
    got = dict(zip(log.column("request_id").to_pylist(), log.column("proba_1").to_pylist(), strict=True))
    idx = np.asarray([int(r[1:]) for r in got])
    np.testing.assert_allclose(list(got.values()), proba[idx, 1], rtol=1e-9)


def test_workers_share_one_deployment_and_sum_metrics(churn_df):
    register_numeric("churn", churn_df)
    proc, url = start_server("churn@champion", "--workers", "2")
    body = orjson.dumps(churn_df[NUMERIC].head(1).to_dict("records"))
    n = 60
    try:
        with httpx.Client(base_url=url) as c:
            for _ in range(n):
                c.post("/predict", content=body)
                c.close()  # a new connection each time, so both workers take some
                c = httpx.Client(base_url=url)
            text = c.get("/metrics").text
            c.close()
    finally:
        stop_server(proc)
    line = next(x for x in text.splitlines() if x.startswith('mloop_requests_total{route="predict"'))
    assert float(line.split()[-1]) == n
    (dep,) = DeploymentRepo(get_store()).list(model="churn")
    assert dep.workers == 2 and dep.rows_logged == n and dep.dropped == 0 and dep.status == "stopped"
    assert read_predictions("churn").num_rows == n


def test_non_loopback_bind_needs_a_token():
    out = subprocess.run([sys.executable, "-m", "mloop", "serve", "churn@champion", "--host", "0.0.0.0",
                          "--port", "0"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "MLOOP_SERVE_TOKEN" in out.stderr + out.stdout
