"""Serving: mloop's model server vs `mlflow models serve`, a BentoML service, a plain FastAPI app
calling `predict_proba` (what users hand-write) and a bare Starlette endpoint returning a constant
(the HTTP floor), one run (issue 7, "Benchmarks").

The same StandardScaler + LogisticRegression pipeline (4 float64 features), trained once and loaded
by every server; one worker each; mloop with its defaults (batching on, prediction log, metrics and
signature checks on). Load from Debian's `wrk` in its own process (a Lua script POSTs the body), for
1-row and 100-row JSON payloads at concurrency 1, 16 and 64. Every server runs on one core and wrk on
another (CPU affinity, where the machine has two or more): measured here, the same model call costs
1.4x the CPU while the other core is busy, so unpinned, each server's CPU per request depended on
how much its own threads and wrk overlapped on the two cores. Server CPU per request is the server
process tree's user + system CPU over the run (psutil) divided by the requests wrk completed. mloop's
overhead is its CPU per request minus the in-process CPU of the same work (parse + encode per
request, plus one model call over as many requests as the server put in a call, read from its
/metrics, divided by that number), set against the floor's CPU per request. Also: batching (the
default) with 64 concurrent 1-row callers against `--no-batching`, `--onnx` against the native path,
and 100,000 requests at c=32 with 1% malformed (no 5xx, every malformed one a 4xx).

    .venv/bin/python benchmarks/serving.py            # full run, updates RESULTS.md (apt-get install wrk)
    .venv/bin/python benchmarks/serving.py --quick    # mloop, FastAPI and the floor only, short runs
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MLOOP_BIN,
    MLOOP_PYTHON,
    QUIET_ENV,
    Target,
    fmt,
    fresh_dir,
    log,
    parse_args,
    peer_venv,
    ratio,
    run_python,
    write_section,
)

MLFLOW_REQUIREMENTS = ["mlflow==3.17.*"]
BENTOML_REQUIREMENTS = ["bentoml==1.4.40", "scikit-learn==1.9.1", "pandas==3.1.1"]
FEATURES = ["f0", "f1", "f2", "f3"]
C1_RUNS = 5

TRAIN = """
import json, sys, joblib, numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
out = sys.argv[1]
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(5000, 4)), columns=["f0", "f1", "f2", "f3"])
y = (X.f0 + 0.5 * X.f1 - X.f2 + rng.normal(0, 0.3, 5000) > 0).astype(int)
pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)
joblib.dump(pipe, out + "/model.joblib")
X.head(100).to_json(out + "/rows.json", orient="records")
import mloop
with mloop.start_run(experiment="bench-serving") as run:
    mv = run.log_model(pipe, "bench", input_example=X.head(5), register=True)
mloop.models.set_alias("bench", "champion", mv.version)
emit(version=mv.version)
"""

INPROCESS = """
import json, os, sys, time
if len(sys.argv) > 4:  # the core the servers ran on
    os.sched_setaffinity(0, {int(sys.argv[4])})
from mloop.serving.server import ServeOptions, _load
from mloop.serving import payloads
served = _load("bench@champion", ServeOptions(uri="bench@champion"), "bench")
bodies, k = sys.argv[1:3], max(1, round(float(sys.argv[3])))


def cpu_us(fn, reps=2000):
    for _ in range(200):
        fn()
    t0 = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t0) / reps * 1e6


out = {}
for name in bodies:
    body = open(name, "rb").read()
    cols, n = payloads.parse_predict(body, served.inputs)
    pred, proba = served.predict(cols, n)

    def once():
        c, m = payloads.parse_predict(body, served.inputs)
        p, q = served.predict(c, m)
        return payloads.encode_predict("id", served.name, served.version, p, q, served.class_keys)

    out[name] = cpu_us(once)
    if name == bodies[0]:
        # what the batching server does per request at k requests per model call
        out["parse_encode"] = cpu_us(lambda: (payloads.parse_predict(body, served.inputs), payloads.encode_predict(
            "id", served.name, served.version, pred, proba, served.class_keys)))
        out["predict_k"] = cpu_us(lambda: served.predict_block([(cols, n)] * k), reps=1000)
        out["k"] = k
        # the same k-request call through onnxruntime (what `--onnx` serves)
        fast = _load("bench@champion", ServeOptions(uri="bench@champion", onnx=True), "bench")
        if fast.onnx is not None:
            out["onnx_predict_k"] = cpu_us(lambda: fast.predict_block([(cols, n)] * k), reps=1000)
emit(**out)
"""

FASTAPI_APP = '''
import joblib, os, pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL_PATH"])
app = FastAPI()


class Row(BaseModel):
    f0: float
    f1: float
    f2: float
    f3: float


@app.post("/predict")
def predict(rows: list[Row]):
    df = pd.DataFrame([r.model_dump() for r in rows])
    proba = model.predict_proba(df)
    return {"predictions": proba.argmax(axis=1).tolist(), "probabilities": proba.tolist()}
'''

# Below any ASGI framework: uvicorn calling a bare ASGI function that reads the body and answers a
# constant. No server built on uvicorn can cost less per request.
RAW_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"19")]})
    await send({"type": "http.response.body", "body": b'{"predictions":[1]}'})
'''

FLOOR_APP = '''
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def constant(request):
    return Response(b'{"predictions":[1]}', media_type="application/json")

async def ready(request):
    return Response(b"")

app = Starlette(routes=[Route("/predict", constant, methods=["POST"]), Route("/ready", ready)])
'''

BENTO_SERVICE = '''
import os
import bentoml
import joblib
import pandas as pd


@bentoml.service(workers=1, traffic={"timeout": 60})
class Churn:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["MODEL_PATH"])

    @bentoml.api
    def predict(self, records: list[dict]) -> dict:
        proba = self.model.predict_proba(pd.DataFrame(records))
        return {"predictions": proba.argmax(axis=1).tolist(), "probabilities": proba.tolist()}
'''

MLFLOW_SAVE = """
import sys, joblib, mlflow.sklearn
mlflow.sklearn.save_model(joblib.load(sys.argv[1] + "/model.joblib"), sys.argv[1] + "/mlflow-model")
emit(ok=1)
"""

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()
"""

# 1% malformed: every 100th request is one of four bad bodies; stops after {total} responses.
LUA_BAD = """
local good, bad = nil, {{}}
local f = io.open("{body}", "rb"); good = f:read("*all"); f:close()
bad[1] = '[{{"f0": 1.0, "f1": '
bad[2] = '[{{"f0": "x", "f1": 1.0, "f2": 1.0, "f3": 1.0}}]'
bad[3] = '[{{"f0": 1.0, "f1": 1.0, "f2": 1.0}}]'
bad[4] = string.rep(" ", 70000)
local n, sent, seen, s5, s4, s2 = 0, 0, 0, 0, 0, 0
request = function()
  sent = sent + 1
  local body = good
  if sent % 100 == 0 then body = bad[(sent / 100) % 4 + 1] end
  return wrk.format("POST", "/predict", {{["Content-Type"] = "application/json"}}, body)
end
response = function(status, headers, body)
  seen = seen + 1
  if status >= 500 then s5 = s5 + 1 elseif status >= 400 then s4 = s4 + 1 else s2 = s2 + 1 end
  if seen >= {total} then
    io.write(string.format("BADLOAD %d %d %d %d\\n", seen, s2, s4, s5))
    io.flush()
    os.exit(0)
  end
end
"""


def _cpus() -> tuple[set[int], set[int]] | None:
    """(the servers' core, wrk's core), or None on a one-core machine (nothing to pin)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    return ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else None


PINNED = _cpus()


def _pin(which: int):  # noqa: ANN202 - a Popen preexec_fn
    if PINNED is None:
        return None
    return lambda: os.sched_setaffinity(0, PINNED[which])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process tree on a port, with its CPU read through psutil."""

    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str, *, env: dict | None = None,
                 cwd: Path | None = None, timeout: float = 180.0) -> None:
        import psutil

        self.name, self.port = name, port
        full_env = {**os.environ, **QUIET_ENV, **(env or {})}
        self.log = open(Path(cwd or ".") / f"{name}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_pin(0))
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        import urllib.request

        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {Path(self.log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{name} not ready in {timeout:.0f} s")
            time.sleep(0.1)

    def cpu(self) -> float:
        import psutil

        total = 0.0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def batch_counts(server: Server) -> tuple[float, float] | None:
    """mloop's `(model calls, rows)` so far, from its /metrics; None for other servers."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    calls = re.search(r"^mloop_batch_rows_count (\S+)", text, re.M)
    rows = re.search(r"^mloop_batch_rows_sum (\S+)", text, re.M)
    return (float(calls.group(1)), float(rows.group(1))) if calls and rows else None


def wrk(server: Server, path: str, script: Path, conns: int, seconds: float, *, extra: list[str] = ()) -> dict:
    """One wrk run: req/s, p50/p99 ms, non-2xx and socket errors, server CPU µs per request, and for
    mloop the mean rows per model call."""
    batches0 = batch_counts(server) if server.name.startswith("mloop") else None
    cpu0 = server.cpu()
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "30s", "--latency",
                          "-s", str(script), *extra, f"http://127.0.0.1:{server.port}{path}"],
                         capture_output=True, text=True, timeout=seconds + 600, preexec_fn=_pin(1))
    cpu1 = server.cpu()
    batches1 = batch_counts(server) if batches0 is not None else None
    text = out.stdout
    found = re.search(r"(\d+) requests in", text)
    if found is None:
        raise RuntimeError(f"wrk failed on {server.name}: {text[-2000:]} {out.stderr[-2000:]}")
    total = int(found.group(1))
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": _ms(lat["50"]) if "50" in lat else None, "p99": _ms(lat["99"]) if "99" in lat else None,
        "requests": total, "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, sock.groups())) if sock else 0,
        "cpu_us": (cpu1 - cpu0) / total * 1e6 if total else None, "stdout": text,
        "rows_per_call": (batches1[1] - batches0[1]) / (batches1[0] - batches0[0])
        if batches0 and batches1 and batches1[0] > batches0[0] else None,
    }


def main() -> None:
    args = parse_args("serving: mloop vs mlflow models serve, BentoML, plain FastAPI, bare Starlette")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    seconds = 2.0 if args.quick else 8.0
    concurrencies = [16] if args.quick else [1, 16, 64]
    payload_rows = [1] if args.quick else [1, 100]
    mlflow = None if args.quick else peer_venv("mlflow", MLFLOW_REQUIREMENTS)
    bento = None if args.quick else peer_venv("bentoml", BENTOML_REQUIREMENTS)
    with fresh_dir("serving") as work:
        env = {"MLOOP_HOME": str(work / ".mloop"), "MLOOP_TRACKING_URI": "", "MLOOP_ARTIFACT_URI": ""}
        env = {k: v for k, v in env.items() if v}
        os.environ.update(env)
        (work / ".mloop").mkdir()
        log("training and registering the model")
        run_python(TRAIN, args=[str(work)], cwd=work)
        rows = json.loads((work / "rows.json").read_text())
        bodies, scripts = {}, {}
        for n in (1, 100):
            recs = [{k: r[k] for k in FEATURES} for r in rows[:n]]
            for kind, doc in (("records", recs), ("mlflow", {"dataframe_records": recs}),
                              ("bento", {"records": recs})):
                path = work / f"body-{kind}-{n}.json"
                path.write_text(json.dumps(doc))
                bodies[kind, n] = path
                script = work / f"body-{kind}-{n}.lua"
                script.write_text(LUA.format(body=path))
                scripts[kind, n] = script
        (work / "fastapi_app.py").write_text(FASTAPI_APP)
        (work / "floor_app.py").write_text(FLOOR_APP)
        (work / "raw_app.py").write_text(RAW_APP)
        (work / "bento_service.py").write_text(BENTO_SERVICE)
        model_env = {"MODEL_PATH": str(work / "model.joblib")}
        uv = [str(MLOOP_PYTHON), "-m", "uvicorn", "--log-level", "warning", "--no-access-log", "--workers", "1"]

        def mloop_server(name: str, *flags: str) -> Server:
            port = free_port()
            return Server(name, [str(MLOOP_BIN / "mloop"), "serve", "bench@champion", "--port", str(port), *flags],
                          port, "/v2/health/ready", cwd=work)

        servers: list[tuple[str, object, str, str]] = [
            ("mloop", lambda: mloop_server("mloop"), "/predict", "records"),
            ("FastAPI + predict_proba", lambda: (p := free_port()) and Server(
                "fastapi", [*uv, "fastapi_app:app", "--port", str(p)], p, "/docs", env=model_env, cwd=work),
             "/predict", "records"),
            ("Starlette constant (floor)", lambda: (p := free_port()) and Server(
                "floor", [*uv, "floor_app:app", "--port", str(p)], p, "/ready", cwd=work), "/predict", "records"),
        ]
        if mlflow is not None:
            log("saving the model for MLflow")
            run_python(MLFLOW_SAVE, python=mlflow.python, args=[str(work)], cwd=work)
            servers.append(("mlflow models serve", lambda: (p := free_port()) and Server(
                "mlflow", [str(mlflow.bin("mlflow")), "models", "serve", "-m", str(work / "mlflow-model"), "-p",
                           str(p), "--env-manager", "local", "--workers", "1"], p, "/ping",
                env={"PATH": f"{mlflow.path / 'bin'}:{os.environ['PATH']}"}, cwd=work), "/invocations", "mlflow"))
        if bento is not None:
            servers.append(("BentoML", lambda: (p := free_port()) and Server(
                "bentoml", [str(bento.bin("bentoml")), "serve", "bento_service:Churn", "--port", str(p)], p,
                "/readyz", env={**model_env, "PATH": f"{bento.path / 'bin'}:{os.environ['PATH']}",
                                "BENTOML_DO_NOT_TRACK": "True"}, cwd=work), "/predict", "bento"))

        results: dict[tuple[str, int, int], dict] = {}
        for name, make, path, kind in servers:
            log(f"starting {name}")
            try:
                server = make()
            except Exception as exc:  # noqa: BLE001 - a peer that will not start is reported, not fatal
                log(f"{name} did not start: {exc}")
                continue
            try:
                for n in payload_rows:
                    for c in concurrencies:
                        r = wrk(server, path, scripts[kind, n], c, seconds)
                        results[name, n, c] = r
                        log(f"{name} rows={n} c={c}: {r['rps']:.0f} req/s p50 {fmt(r['p50'])} ms "
                            f"p99 {fmt(r['p99'])} ms cpu {fmt(r['cpu_us'])} us/req non2xx {r['non2xx']}")
            finally:
                server.stop()

        # c=1 latency, mloop and FastAPI alternating: a 1% tail at one request at a time is the share of
        # requests that meet the machine's hiccups, which come and go over seconds (one server's p99
        # over 8 s runs spans 2x here); medians of C1_RUNS alternating runs each compare the servers
        # under the same spells.
        c1: dict[str, list[dict]] = {}
        pair = [(name, make, path, kind) for name, make, path, kind in servers
                if name in ("mloop", "FastAPI + predict_proba")]
        if not args.quick and len(pair) == 2:
            log(f"c=1 latency: mloop and FastAPI, {C1_RUNS} alternating runs each")
            up = {}
            try:
                for name, make, _, _ in pair:
                    up[name] = make()
                for _ in range(C1_RUNS):
                    for name, _, path, kind in pair:
                        r = wrk(up[name], path, scripts[kind, 1], 1, seconds)
                        c1.setdefault(name, []).append(r)
                        log(f"{name} c=1: p50 {fmt(r['p50'])} ms p99 {fmt(r['p99'])} ms")
            finally:
                for server in up.values():
                    server.stop()

        targets, notes = [], []
        # batching and ONNX, 1-row
        c_batch = 16 if args.quick else 64
        for label, flags in (("mloop --no-batching", ["--no-batching"]), ("mloop --onnx", ["--onnx"]),
                             ("mloop --onnx --no-batching", ["--onnx", "--no-batching"])):
            log(f"starting {label}")
            server = mloop_server(label.replace(" ", "").replace("-", ""), *flags)
            try:
                for c in (sorted({16, c_batch}) if label == "mloop --no-batching" else [16]):
                    results[label, 1, c] = r = wrk(server, "/predict", scripts["records", 1], c, seconds)
                    log(f"{label} c={c}: {r['rps']:.0f} req/s non2xx {r['non2xx']}")
                if label == "mloop --onnx":
                    meta = json.loads(subprocess.run(["curl", "-s", f"http://127.0.0.1:{server.port}/v2/models/bench"],
                                                     capture_output=True, text=True).stdout)
                    notes.append(f"--onnx served through onnxruntime: {meta['parameters']['onnx']}")
            finally:
                server.stop()

        log("starting uvicorn raw ASGI constant")
        port = free_port()
        server = Server("raw", [*uv, "raw_app:app", "--port", str(port)], port, "/ready", cwd=work)
        try:
            results["uvicorn raw ASGI constant", 1, 16] = r = wrk(server, "/predict", scripts["records", 1], 16, seconds)
            log(f"uvicorn raw ASGI constant c=16: {r['rps']:.0f} req/s cpu {fmt(r['cpu_us'])} us/req")
        finally:
            server.stop()

        # bad input under load
        total_bad = 2_000 if args.quick else 100_000
        log(f"bad input under load: {total_bad} requests at c=32, 1% malformed")
        server = mloop_server("mloop-bad", "--max-body", "65536")
        try:
            bad_script = work / "bad.lua"
            bad_script.write_text(LUA_BAD.format(body=bodies["records", 1], total=total_bad))
            out = subprocess.run(["wrk", "-t1", "-c32", "-d3600s", "--timeout", "30s", "-s", str(bad_script),
                                  f"http://127.0.0.1:{server.port}/predict"], capture_output=True, text=True,
                                 timeout=3600, preexec_fn=_pin(1))
            seen, s2, s4, s5 = map(int, re.search(r"BADLOAD (\d+) (\d+) (\d+) (\d+)", out.stdout).groups())
        finally:
            server.stop()

        # in-process parse + predict + encode, for mloop's overhead
        k16 = (results.get(("mloop", 1, 16)) or {}).get("rows_per_call") or 1.0
        core = [str(min(PINNED[0]))] if PINNED else []
        inproc = run_python(INPROCESS, args=[str(bodies["records", 1]), str(bodies["records", 100]), str(k16), *core],
                            cwd=work).result

    # -- table ------------------------------------------------------------------------------------
    headers = ["server (mloop and peers)", "payload rows", "c", "req/s", "p50 ms", "p99 ms", "server CPU µs/req",
               "non-2xx"]
    table = []
    for (name, n, c), r in results.items():
        if r is None:
            continue
        table.append([name, n, c, fmt(r["rps"], 4), fmt(r["p50"]), fmt(r["p99"]), fmt(r["cpu_us"], 4), r["non2xx"]])
    table.sort(key=lambda row: (row[1], row[2], row[0] != "mloop", row[0]))
    def get(name: str, n: int = 1, c: int = 16) -> dict | None:
        return results.get((name, n, c))

    in1, in100 = inproc[str(bodies["records", 1])], inproc[str(bodies["records", 100])]
    notes.append(f"in-process parse + predict + encode (mloop's own code, no HTTP): {in1:.0f} µs (1 row), "
                 f"{in100:.0f} µs (100 rows)")
    notes.append(f"bad input under load: {seen} responses at c=32, 1% malformed: {s2} 2xx, {s4} 4xx, {s5} 5xx")
    notes.append("wall figures vary run to run on a 2-core machine; CPU µs per request is the steadier figure")
    if PINNED:
        notes.append(f"every server (its whole process tree) ran on core {min(PINNED[0])}, wrk on core "
                     f"{min(PINNED[1])}, the in-process reference on the servers' core")
    else:
        notes.append("one core: servers and wrk shared it (no pinning)")
    for peer in ("mlflow models serve", "BentoML", "FastAPI + predict_proba"):
        mine, theirs = get("mloop", 1, 16), get(peer, 1, 16)
        if mine and theirs and mine["cpu_us"] and theirs["cpu_us"]:
            notes.append(f"server CPU per 1-row request, c=16: {peer} {theirs['cpu_us']:.0f} µs vs mloop "
                         f"{mine['cpu_us']:.0f} µs ({theirs['cpu_us'] / mine['cpu_us']:.1f}x less for mloop)")
    for (name, n, c), r in sorted(results.items()):
        if name == "mloop" and r and r.get("rows_per_call"):
            notes.append(f"mloop (batching on, the default), {n}-row payloads at c={c}: "
                         f"{r['rows_per_call']:.1f} rows per model call")
    notes.append("mloop's defaults batch: concurrent requests share one model call on a worker thread (a lone "
                 "caller never waits for a batch to fill); `mloop --no-batching` runs each request's model call "
                 "inline on the event loop")

    m16 = get("mloop")
    for peer, factor in (("mlflow models serve", 10.0), ("BentoML", 3.0), ("FastAPI + predict_proba", 1.3)):
        for c in ([16] if args.quick else [16, 64]):
            mine, theirs = get("mloop", 1, c), get(peer, 1, c)
            if theirs is None or mine is None:
                targets.append(Target(f"req/s vs {peer}, c={c}", f">= {factor}x, p99 <=", "not measured", None))
                continue
            x = ratio(mine["rps"], theirs["rps"])
            ok = x is not None and x >= factor and mine["p99"] <= theirs["p99"]
            targets.append(Target(f"req/s vs {peer}, 1 row, c={c}", f">= {factor}x and p99 <= theirs",
                                  f"{fmt(x)}x; p99 {fmt(mine['p99'])} vs {fmt(theirs['p99'])} ms", ok))
    mine1, fa1 = get("mloop", 1, 1), get("FastAPI + predict_proba", 1, 1)
    if len(c1) == 2:  # the medians of the alternating runs
        med = {name: {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99")} for name, runs in c1.items()}
        mine1, fa1 = med["mloop"], med["FastAPI + predict_proba"]
        for name, runs in c1.items():
            notes.append(f"c=1, {len(runs)} alternating runs: {name} p50 {', '.join(fmt(r['p50']) for r in runs)} ms, "
                         f"p99 {', '.join(fmt(r['p99']) for r in runs)} ms")
    if mine1 and fa1:
        ok = mine1["p50"] <= 0.7 * fa1["p50"] and mine1["p99"] <= 0.7 * fa1["p99"]
        how = f", medians of {C1_RUNS} alternating runs" if len(c1) == 2 else ""
        targets.append(Target(f"latency vs FastAPI, c=1{how}", "p50 and p99 <= 0.7x",
                              f"p50 {fmt(ratio(mine1['p50'], fa1['p50']))}x, p99 {fmt(ratio(mine1['p99'], fa1['p99']))}x",
                              ok))
    else:
        targets.append(Target("latency vs FastAPI, c=1", "p50 and p99 <= 0.7x", "not measured", None))
    floor = get("Starlette constant (floor)")
    if m16 and floor:
        # The batching server makes one model call per k requests, so the in-process work it is set
        # against is the same: parse + encode per request plus a k-request model call / k. (Against
        # a 1-request call, as the issue words it, the overhead would come out negative.)
        k = inproc["k"]
        same_work = inproc["parse_encode"] + inproc["predict_k"] / k
        overhead = m16["cpu_us"] - same_work
        notes.append(f"overhead, defaults at c=16: server {m16['cpu_us']:.0f} µs/req - in-process {same_work:.0f} µs "
                     f"(parse + encode {inproc['parse_encode']:.0f} µs + one {k}-request model call "
                     f"{inproc['predict_k']:.0f} µs / {k}); against a lone 1-row parse + predict + encode "
                     f"({in1:.0f} µs) it would be {m16['cpu_us'] - in1:.0f} µs")
        targets.append(Target("mloop overhead (server CPU/req - in-process, same batching)", "<= 2x the floor's CPU/req",
                              f"{overhead:.0f} µs vs floor {floor['cpu_us']:.0f} µs "
                              f"({fmt(ratio(overhead, floor['cpu_us']))}x)", overhead <= 2 * floor["cpu_us"]))
        inline = get("mloop --no-batching", 1, 16)
        if inline:
            notes.append(f"overhead, --no-batching at c=16: server {inline['cpu_us']:.0f} µs/req - in-process "
                         f"{in1:.0f} µs = {inline['cpu_us'] - in1:.0f} µs")
    b, nb = get("mloop", 1, c_batch), get("mloop --no-batching", 1, c_batch)
    if b and nb:
        targets.append(Target(f"batching (default), {c_batch} concurrent 1-row callers", ">= 3x --no-batching, no 503s",
                              f"{fmt(ratio(b['rps'], nb['rps']))}x, non-2xx {b['non2xx']}",
                              ratio(b["rps"], nb["rps"]) >= 3 and b["non2xx"] == 0))
    # --onnx makes the model call cheaper. The figure is judged call for call (--no-batching on
    # both: the two model paths, nothing else different). With the defaults one call serves ~16
    # requests and HTTP bounds the rate: that ratio is shown beside its ceiling, computed below.
    o, nat = get("mloop --onnx --no-batching"), get("mloop --no-batching")
    if o and nat:
        targets.append(Target("--onnx vs native, 1 row, c=16 (--no-batching on both)", ">= 2x req/s",
                              f"{fmt(ratio(o['rps'], nat['rps']))}x", ratio(o["rps"], nat["rps"]) >= 2))
    raw = get("uvicorn raw ASGI constant")
    o, nat = get("mloop --onnx"), get("mloop")
    if o and nat and raw and "onnx_predict_k" in inproc:
        # With batching, the most any server on uvicorn could gain from a cheaper model call: two
        # servers that add nothing to the raw ASGI floor but the in-process work, CPU-bound.
        k = inproc["k"]
        native_work = inproc["parse_encode"] + inproc["predict_k"] / k
        onnx_work = inproc["parse_encode"] + inproc["onnx_predict_k"] / k
        ceiling = (raw["cpu_us"] + native_work) / (raw["cpu_us"] + onnx_work)
        notes.append(f"--onnx with batching on both, c=16: a {k}-request call costs {inproc['predict_k']:.0f} µs "
                     f"natively and {inproc['onnx_predict_k']:.0f} µs through onnxruntime ({native_work:.1f} vs "
                     f"{onnx_work:.1f} µs per request with parse + encode); on the raw ASGI floor "
                     f"({raw['cpu_us']:.0f} µs/req) a server with no other cost could gain at most "
                     f"{ceiling:.2f}x req/s from the cheaper call")
        # "out of reach" only while the run agrees with the ceiling: a ratio above it means the
        # model did not hold in this run, and the shortfall is then just NOT met
        gain = ratio(o["rps"], nat["rps"])
        targets.append(Target("--onnx vs native, 1 row, c=16 (defaults, batching on both)", ">= 2x req/s",
                              f"{fmt(gain)}x; ceiling {ceiling:.2f}x",
                              True if gain >= 2 else (False if gain > ceiling else None),
                              why=f"out of reach: at most {ceiling:.2f}x on uvicorn"))
    targets.append(Target(f"bad input under load ({total_bad} requests, c=32, 1% malformed)",
                          "no 5xx; malformed -> 4xx", f"{s5} 5xx, {s4} 4xx of {seen}",
                          s5 == 0 and seen >= total_bad and abs(s4 - total_bad // 100) <= 1))
    write_section("serving", "Serving (issue 7)", headers, table, targets, args=args, notes=notes)


if __name__ == "__main__":
    main()
