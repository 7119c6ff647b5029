"""The model server through real HTTP clients on a real port: every endpoint, V2 JSON and binary
tensors of every datatype the signature admits, tritonclient with its defaults, MLflow payloads,
batching, canary, shadow, hot reload, tokens, bundles."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import struct
import subprocess
import sys
import threading

import httpx
import numpy as np
import orjson
import pytest
from serving_helpers import (
    FEATURES,
    NUMERIC,
    ServerThread,
    churn_frame,
    register,
    register_numeric,
    wait_until,
)

import mloop
from mloop.serving import create_app, read_feedback, read_predictions
from mloop.serving.payloads import V2_DTYPES
from mloop.serving.traffic import bucket
from mloop.store import get_store
from mloop.store.serving import DeploymentRepo


def reference(pipe, df):
    proba = pipe.predict_proba(df[FEATURES])
    return pipe.classes_[proba.argmax(axis=1)], proba


def records(df):
    return df[FEATURES].to_dict("records")


def test_every_endpoint(churn_model, churn_df):
    mv, pipe = churn_model
    app = create_app("churn@champion", reload_interval=0)
    rows = churn_df.head(3)
    labels, proba = reference(pipe, rows)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 200
        meta = c.get("/v2").json()
        assert meta["name"] == "mloop" and "binary_tensor_data" in meta["extensions"]
        model_meta = c.get("/v2/models/churn").json()
        assert model_meta["name"] == "churn" and model_meta["versions"] == ["1"]
        assert [i["name"] for i in model_meta["inputs"]] == FEATURES
        assert [i["datatype"] for i in model_meta["inputs"]] == ["INT64", "FP64", "FP64", "BYTES"]
        assert model_meta["outputs"][1] == {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]}
        assert model_meta["parameters"]["classes"] == ["0", "1"]
        assert c.get("/v2/models/churn/versions/1").json()["versions"] == ["1"]
        assert c.get("/v2/models/churn/ready").status_code == 200
        assert c.get("/v2/models/churn/versions/1/ready").status_code == 200
        assert c.get("/v2/models/nope/ready").status_code == 404
        assert c.get("/v2/models/churn/versions/9").json() == {
            "error": "model 'churn' has no version '9' here; served versions: 1"}

        # V2 infer, JSON, named column tensors; the id is echoed
        body = {"id": "q1", "inputs": [
            {"name": "age", "shape": [3], "datatype": "INT64", "data": rows.age.tolist()},
            {"name": "income", "shape": [3, 1], "datatype": "FP64", "data": [[v] for v in rows.income]},
            {"name": "tenure", "shape": [3], "datatype": "FP64", "data": rows.tenure.tolist()},
            {"name": "plan", "shape": [3], "datatype": "BYTES", "data": rows.plan.tolist()}]}
        r = c.post("/v2/models/churn/infer", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["model_name"] == "churn" and out["model_version"] == "1" and out["id"] == "q1"
        assert out["outputs"][0]["data"] == labels.tolist()
        np.testing.assert_allclose(np.reshape(out["outputs"][1]["data"], (3, 2)), proba, rtol=1e-12)
        assert r.headers["x-mloop-model-version"] == "1"
        # one [n, k] BYTES tensor carrying the whole mixed frame, and versioned path
        mat = {"inputs": [{"name": "input", "shape": [3, 4], "datatype": "BYTES",
                           "data": rows[FEATURES].to_numpy(dtype=object).reshape(-1).tolist()}]}
        r = c.post("/v2/models/churn/versions/1/infer", json=mat)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == labels.tolist()

        # /predict, records; x-request-id kept
        r = c.post("/predict", json=records(rows), headers={"x-request-id": "my-id-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "my-id-1"
        doc = r.json()
        assert doc["request_id"] == "my-id-1" and doc["model"] == "churn" and doc["version"] == 1
        assert doc["predictions"] == labels.tolist()
        np.testing.assert_allclose([[p["0"], p["1"]] for p in doc["probabilities"]], proba, rtol=1e-12)
        # /predict split, and a made-up request id when none is sent
        r = c.post("/predict", json={"columns": FEATURES, "data": rows[FEATURES].values.tolist()})
        assert r.json()["predictions"] == labels.tolist() and len(r.headers["x-request-id"]) == 32

        # MLflow /invocations bodies
        split = json.loads(rows[FEATURES].to_json(orient="split", index=False))
        for payload in ({"dataframe_split": split}, {"dataframe_records": records(rows)},
                        {"inputs": {c_: rows[c_].tolist() for c_ in FEATURES}}):
            r = c.post("/invocations", json=payload)
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == labels.tolist()

        # errors: 400 / 413 / 422 / 404 in the two error shapes
        r = c.post("/predict", content=b"{oops")
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        r = c.post("/predict", json=[{"age": 30, "income": 1.0, "tenure": 1.0}])
        assert r.status_code == 422 and "'plan'" in r.json()["message"]
        r = c.post("/predict", json=[{"age": "old", "income": 1.0, "tenure": 1.0, "plan": "pro"}])
        assert r.status_code == 422 and "'age'" in r.json()["message"] and "int64" in r.json()["message"]
        r = c.post("/predict", content=b"[" + b" " * (11 * 1024 * 1024) + b"]")
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
        r = c.post("/v2/models/nope/infer", json=mat)
        assert r.status_code == 404 and set(r.json()) == {"error"}
        r = c.post("/v2/models/churn/infer", content=b"nope")
        assert r.status_code == 400 and set(r.json()) == {"error"}
        r = c.get("/nowhere")
        assert r.status_code == 404 and r.json()["error"] == "not_found"

        # feedback, metrics, docs
        r = c.post("/feedback", json={"request_id": "my-id-1:0", "label": 1})
        assert r.status_code == 202
        r = c.post("/feedback", json=[{"request_id": "a", "label": "yes"}, {"request_id": "b", "label": "no"}])
        assert r.status_code == 202 and r.json() == {"accepted": 2}
        assert c.post("/feedback", json={"label": 1}).status_code == 422
        text = c.get("/metrics").text
        for name in ("mloop_requests_total", "mloop_errors_total", "mloop_request_latency_seconds_bucket",
                     "mloop_batch_rows_bucket", "mloop_model_version", "mloop_predictions_total",
                     "mloop_log_dropped_rows_total"):
            assert name in text, name
        assert 'mloop_errors_total{code="422",route="predict"} 2.0' in text
        assert 'mloop_model_version{model="churn",role="champion",version="1"} 1.0' in text
        spec = c.get("/openapi.json").json()
        assert "/predict" in spec["paths"] and "/v2/models/churn/infer" in spec["paths"]
        assert c.get("/docs").status_code == 200
    fb = read_feedback().to_pydict()
    assert fb["request_id"] == ["my-id-1:0", "a", "b"] and fb["label"] == ["1", "yes", "no"]
    # the log holds exactly the answered rows: 3 infer + 3 infer + 3 + 3 predict + 3 x 3 invocations
    log = read_predictions("churn")
    assert log.num_rows == 21
    assert set(log.column("version").to_pylist()) == {1}
    mine = log.filter(np.asarray([r.startswith("my-id-1:") for r in log.column("request_id").to_pylist()]))
    assert mine.column("prediction").to_pylist() == labels.tolist()
    np.testing.assert_allclose(mine.column("proba_1").to_numpy(), proba[:, 1])
    assert mine.column("plan").to_pylist() == rows.plan.tolist()
    dep = DeploymentRepo(get_store()).get(app.state.deployment_id)
    assert dep.status == "stopped" and dep.rows_logged == 21 and dep.dropped == 0
    from mloop.store.lineage import LineageRepo

    edges = LineageRepo(get_store()).edges(("deployment", dep.id), "in")
    assert [(e.from_kind, e.from_id, e.relation) for e in edges] == [("model_version", "churn/1", "served")]


INT_TYPES = ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
FLOAT_TYPES = ["FP16", "FP32", "FP64"] + INT_TYPES  # int -> float is always allowed


def _binary_request(tensors):
    """A binary-extension body: (name, datatype, array) tensors."""
    head, chunks = {"inputs": []}, []
    for name, dt, arr in tensors:
        if dt == "BYTES":
            raw = b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in arr)
        else:
            raw = np.asarray(arr, dtype=V2_DTYPES[dt]).tobytes()
        head["inputs"].append({"name": name, "shape": [len(arr)], "datatype": dt,
                               "parameters": {"binary_data_size": len(raw)}})
        chunks.append(raw)
    head["outputs"] = [{"name": "prediction", "parameters": {"binary_data": True}},
                       {"name": "probabilities", "parameters": {"binary_data": True}}]
    h = orjson.dumps(head)
    return h + b"".join(chunks), len(h)


def test_v2_every_admitted_datatype_json_and_binary(churn_model):
    mv, pipe = churn_model
    df = churn_frame(4, seed=5)
    df["income"] = df.income.round(0)  # integral, so narrow float and int tensors carry it exactly
    df["tenure"] = (df.tenure * 4).round() / 4  # exact in FP16
    df["age"] = df.age.clip(18, 100)
    labels, proba = reference(pipe, df)
    app = create_app("churn/1", reload_interval=0)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        for age_t in INT_TYPES:
            for num_t in FLOAT_TYPES:
                inc_t = num_t if num_t not in ("FP16", "INT8", "UINT8", "INT16", "UINT16") else "FP64"
                tensors = [("age", age_t, df.age.to_numpy()), ("income", inc_t, df.income.to_numpy()),
                           ("tenure", num_t if num_t.startswith("FP") else "FP64", df.tenure.to_numpy()),
                           ("plan", "BYTES", df.plan.tolist())]
                js = {"inputs": [{"name": n, "datatype": t, "shape": [len(a)],
                                  "data": list(a) if t == "BYTES" else np.asarray(a).astype(V2_DTYPES[t]).tolist()}
                                 for n, t, a in tensors]}
                r = c.post("/v2/models/churn/infer", json=js)
                assert r.status_code == 200, (age_t, num_t, r.text)
                assert r.json()["outputs"][0]["data"] == labels.tolist(), (age_t, num_t)
                np.testing.assert_allclose(np.reshape(r.json()["outputs"][1]["data"], (-1, 2)), proba, rtol=1e-9)
                body, hl = _binary_request(tensors)
                r = c.post("/v2/models/churn/infer", content=body,
                           headers={"Inference-Header-Content-Length": str(hl)})
                assert r.status_code == 200, (age_t, num_t, r.text)
                rhl = int(r.headers["inference-header-content-length"])
                head = orjson.loads(r.content[:rhl])
                sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
                pred = np.frombuffer(r.content[rhl:rhl + sizes[0]], dtype="<i8")
                got = np.frombuffer(r.content[rhl + sizes[0]:], dtype="<f8").reshape(-1, 2)
                assert pred.tolist() == labels.tolist()
                np.testing.assert_allclose(got, proba, rtol=1e-9)
        # a BOOL tensor for an int column and a string for a float are refused, naming the column
        js = {"inputs": [{"name": "age", "datatype": "FP64", "shape": [1], "data": [30.5]},
                         {"name": "income", "datatype": "FP64", "shape": [1], "data": [1.0]},
                         {"name": "tenure", "datatype": "BYTES", "shape": [1], "data": ["long"]},
                         {"name": "plan", "datatype": "BYTES", "shape": [1], "data": ["pro"]}]}
        r = c.post("/v2/models/churn/infer", json=js)
        assert r.status_code == 422 and "'age'" in r.json()["error"]


def test_tritonclient_with_its_defaults(churn_model, churn_df):
    import tritonclient.http as triton

    mv, pipe = churn_model
    rows = churn_df.head(5)
    labels, proba = reference(pipe, rows)
    app = create_app("churn@champion", reload_interval=0)
    with ServerThread(app) as srv:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{srv.port}")
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("churn")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        meta = client.get_model_metadata("churn")
        assert meta["parameters"]["classes"] == ["0", "1"]
        inputs = []
        for spec in meta["inputs"]:
            name, dt = spec["name"], spec["datatype"]
            values = rows[name].to_numpy()
            arr = values.astype(object).reshape(-1, 1) if dt == "BYTES" else values.astype(
                {"INT64": np.int64, "FP64": np.float64}[dt]).reshape(-1, 1)
            inp = triton.InferInput(name, list(arr.shape), dt)
            inp.set_data_from_numpy(arr)  # binary_data=True by default
            inputs.append(inp)
        result = client.infer("churn", inputs, request_id="t-1")  # outputs=None: binary outputs asked
        assert result.as_numpy("prediction").tolist() == labels.tolist()
        np.testing.assert_allclose(result.as_numpy("probabilities"), proba, rtol=1e-12)
        assert result.get_response()["id"] == "t-1"
        # explicit JSON outputs
        outs = [triton.InferRequestedOutput("probabilities", binary_data=False)]
        result = client.infer("churn", inputs, outputs=outs)
        np.testing.assert_allclose(result.as_numpy("probabilities"), proba, rtol=1e-12)
        with pytest.raises(Exception, match="unknown model"):
            client.infer("other", inputs)
        client.close()


def test_batching_gives_each_caller_its_rows(churn_model):
    mv, pipe = churn_model
    df = churn_frame(600, seed=11)
    labels, proba = reference(pipe, df)
    app = create_app("churn@champion", batching=True, max_batch=64, reload_interval=0)
    sizes = [1 + (i % 4) for i in range(160)]
    starts = np.cumsum([0] + sizes[:-1])
    local = threading.local()

    def call(i):
        if not hasattr(local, "c"):
            local.c = httpx.Client(base_url=srv.url, timeout=60)
        lo, hi = starts[i], starts[i] + sizes[i]
        r = local.c.post("/predict", json=records(df.iloc[lo:hi]))
        return i, r.status_code, r.json()

    with ServerThread(app) as srv:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(call, range(len(sizes))))
        metrics = httpx.get(f"{srv.url}/metrics").text
    for i, status, doc in results:
        lo, hi = starts[i], starts[i] + sizes[i]
        assert status == 200
        assert doc["predictions"] == labels[lo:hi].tolist()
        np.testing.assert_allclose([[p["0"], p["1"]] for p in doc["probabilities"]], proba[lo:hi], rtol=1e-9)
    batcher = app.state.serving.batcher
    assert batcher.batches <= len(sizes)
    assert f"mloop_batch_rows_sum {float(sum(sizes))}" in metrics


def test_canary_share_and_sticky_keys(churn_df):
    from scipy.stats import binom

    register_numeric("churn", churn_df)
    register_numeric("churn", churn_df.iloc[::-1])  # version 2, the challenger
    app = create_app("churn/1", challenger="churn/2", canary=0.1, reload_interval=0)
    body = orjson.dumps(churn_df[NUMERIC].head(1).to_dict("records"))
    n = 2000
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        versions = [c.post("/predict", content=body).headers["x-mloop-model-version"] for _ in range(n)]
        keyed = {}
        for k in range(150):
            key = f"user-{k}"
            got = {c.post("/predict", content=body, headers={"x-mloop-key": key}).headers["x-mloop-model-version"]
                   for _ in range(2)}
            assert len(got) == 1, "a key must always land on the same version"
            keyed[key] = got.pop()
    hits = versions.count("2")
    lo, hi = binom.ppf(0.5e-6, n, 0.1), binom.isf(0.5e-6, n, 0.1)
    assert lo <= hits <= hi, (hits, lo, hi)
    for key, version in keyed.items():
        assert version == ("2" if bucket(key) < 1000 else "1")


def test_shadow_never_changes_the_response(churn_model, churn_df):
    mv, pipe = churn_model
    _, shadow_pipe = register("churn-shadow", churn_df, C=0.001)
    rows = churn_df.head(40)
    labels, proba = reference(pipe, rows)
    s_labels, s_proba = reference(shadow_pipe, rows)
    assert not np.allclose(proba, s_proba)
    app = create_app("churn@champion", shadow="churn-shadow/1", reload_interval=0)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        for i in range(len(rows)):
            r = c.post("/predict", json=records(rows.iloc[i:i + 1]), headers={"x-request-id": f"r{i}"})
            assert r.json()["predictions"] == [labels[i]] and r.headers["x-mloop-model-version"] == "1"
            assert r.json()["probabilities"][0]["1"] == pytest.approx(proba[i, 1], rel=1e-12)
    champ = read_predictions("churn").to_pydict()
    shadow = read_predictions("churn-shadow").to_pydict()
    assert sorted(champ["request_id"]) == sorted(f"r{i}" for i in range(40))
    order = np.argsort([int(r.split(":")[0][1:]) for r in shadow["request_id"]])
    assert [shadow["request_id"][j] for j in order] == [f"r{i}:shadow" for i in range(40)]
    np.testing.assert_allclose(np.asarray(shadow["proba_1"])[order], s_proba[:, 1], rtol=1e-9)


def test_hot_reload_under_load_without_failures(churn_model, churn_df):
    mv1, pipe1 = churn_model
    mv2, pipe2 = register("churn", churn_df, C=0.01)
    rows = churn_df.head(1)
    p1, p2 = reference(pipe1, rows)[1][0, 1], reference(pipe2, rows)[1][0, 1]
    app = create_app("churn@champion", reload_interval=0.05)
    body = orjson.dumps(records(rows))
    stop = threading.Event()
    seen: list[tuple[int, str, float]] = []

    def load():
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/predict", content=body)
                seen.append((r.status_code, r.headers.get("x-mloop-model-version"),
                             r.json()["probabilities"][0]["1"] if r.status_code == 200 else None))

    with ServerThread(app) as srv:
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(seen) > 50, what="traffic before the switch")
        mloop.models.set_alias("churn", "champion", mv2.version)
        wait_until(lambda: any(v == "2" for _, v, _ in seen[-20:]) and sum(v == "2" for _, v, _ in seen) > 50,
                   timeout=60, what="version 2 answering")
        stop.set()
        for t in threads:
            t.join(30)
    assert all(status == 200 for status, _, _ in seen), {s for s, _, _ in seen}
    assert {v for _, v, _ in seen} == {"1", "2"}
    for _, v, p in seen:
        assert p == pytest.approx(p1 if v == "1" else p2, rel=1e-12)
    first2 = next(i for i, (_, v, _) in enumerate(seen) if v == "2")
    assert sum(v == "1" for _, v, _ in seen[first2 + 40:]) == 0  # switched for good (4 threads in flight)


def test_token_required_on_inference_and_feedback_only(churn_model, churn_df):
    app = create_app("churn@champion", token="s3cret", reload_interval=0)
    body = records(churn_df.head(1))
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.post("/predict", json=body).status_code == 401
        assert c.post("/predict", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/predict", json=body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.post("/feedback", json={"request_id": "x", "label": 1}).status_code == 401
        assert c.post("/v2/models/churn/infer", json={}).json() == {
            "error": "this server requires 'Authorization: Bearer <token>' (MLOOP_SERVE_TOKEN)"}
        assert c.get("/v2/health/ready").status_code == 200 and c.get("/metrics").status_code == 200


def test_bundle_served_from_a_fresh_directory(churn_model, churn_df, tmp_path, monkeypatch):
    import yaml

    from mloop.serving import build_bundle

    mv, pipe = churn_model
    info = build_bundle("churn@champion", tmp_path / "b")
    assert info["name"] == "churn" and info["version"] == 1
    fresh = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(tmp_path / "b", fresh)
    shutil.rmtree(tmp_path / "b")

    docker = (fresh / "Dockerfile").read_text().splitlines()
    assert docker[1].startswith("FROM python:") and docker[1].endswith("-slim")
    user = [line for line in docker if line.startswith("USER ")]
    assert user and user[-1] != "USER root"
    health = "\n".join(docker)
    assert "HEALTHCHECK" in health and "/v2/health/ready" in health and '"0.0.0.0"' in health
    assert "MLOOP_SERVE_TOKEN" in health
    reqs = (fresh / "requirements.txt").read_text().splitlines()
    assert any(r.startswith("scikit-learn==") for r in reqs)
    wheel = fresh / "wheels" / f"mloop-{mloop.__version__}-py3-none-any.whl"
    assert f"./wheels/{wheel.name}" in reqs and "COPY wheels/ wheels/" in docker
    # the bundled wheel installs with pip and imports as the mloop that built it
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    probe = subprocess.run([sys.executable, "-c", "import mloop.serving.app, mloop; print(mloop.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(target)}, capture_output=True, text=True, check=True,
                           timeout=120, cwd=tmp_path)
    assert probe.stdout.strip().startswith(str(target))
    assert (target / f"mloop-{mloop.__version__}.dist-info" / "entry_points.txt").read_text().count("mloop.cli:main")
    docs = list(yaml.safe_load_all((fresh / "k8s.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["containerPort"]

    # serve it with no metadata store at all: an unreachable tracking URI proves none is opened
    art = tmp_path / "air-gapped-artifacts"
    monkeypatch.setenv("MLOOP_TRACKING_URI", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", str(art))
    mloop.config.reset()
    mloop.registry.model.clear_cache()
    rows = churn_df.head(4)
    labels, proba = reference(pipe, rows)
    app = create_app(str(fresh))
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.post("/predict", json=records(rows))
        assert r.status_code == 200 and r.json()["predictions"] == labels.tolist() and r.json()["version"] == 1
        assert c.post("/feedback", json={"request_id": "x", "label": 1}).status_code == 404
    assert app.state.deployment_id == f"bundle:{mv.digest.removeprefix('blake3:')}"
    files = list(art.rglob("*.parquet"))
    assert len(files) == 1 and files[0].relative_to(art).parts[:2] == ("predictions", "churn")
    # back on a store that shares the artifacts: the index picks the file up on first read
    monkeypatch.setenv("MLOOP_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    mloop.config.reset()
    log = read_predictions("churn")
    assert log.num_rows == 4 and set(log.column("deployment").to_pylist()) == {app.state.deployment_id}
    np.testing.assert_allclose(log.column("proba_1").to_numpy(), proba[:, 1])
