"""Registry: mloop vs MLflow 3.17 (issue 3, "Benchmarks"), one run, both on SQLite in fresh temp dirs.

- batch scoring 2,000,000 rows x 20 float64 (StandardScaler + LogisticRegression), parquet to parquet
  (row groups of 100,000 rows): `Model.predict_batch` against the hand-written
  `iter_batches -> predict_proba -> ParquetWriter` loop writing the same columns (prediction and
  proba_<class>) from the same file, both 65,536-row batches; rows/s timed inside the process,
  peak RSS from wait4; `mlflow.pyfunc` (its `predict`, labels only) over the same file alongside.
- load: wall time of a fresh process that imports sklearn, imports the tool, loads the model by
  alias and predicts one row; median of 5 alternating runs; mloop with its load cache warm (the
  model was logged on this machine) and cold (MLOOP_MODEL_CACHE=0: the skops path). mloop resolves
  the alias with one read through the stdlib sqlite3 driver (store/registry_lookup.py), so the warm
  process imports neither SQLAlchemy nor skops. CPU seconds (the process and its children, from
  wait4) are printed beside the wall times: they are steadier on a shared machine.
- `log_model` of the pipeline with registration (`register=True` / `registered_model_name=`),
  timed around `start_run` + the call, after the tool's modules are imported (mloop's are lazy, so
  they are imported explicitly first), stores already created; median of 3 fresh processes; CPU
  seconds of the same section include finished child processes (MLflow infers requirements in one).

    .venv/bin/python benchmarks/registry.py            # full run, updates RESULTS.md
    .venv/bin/python benchmarks/registry.py --quick    # tiny, mloop only (what the test runs)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MLOOP_PYTHON,
    Target,
    fmt,
    fresh_dir,
    log,
    median_alternating,
    mloop_runtime_venv,
    parse_args,
    peer_venv,
    ratio,
    run_python,
    write_section,
)

MLFLOW_REQUIREMENTS = ["mlflow==3.17.*"]
FULL = {"rows": 2_000_000, "batch_reps": 3, "load_reps": 5, "log_reps": 3}
QUICK = {"rows": 20_000, "batch_reps": 1, "load_reps": 1, "log_reps": 1}
BATCH = 65_536

TRAIN = """
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
_rng = np.random.default_rng(0)
X = pd.DataFrame(_rng.normal(size=(5000, 20)), columns=[f"f{i}" for i in range(20)])
y = (X.f0 + 0.5 * X.f1 - X.f2 > 0).astype(int)
pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)
"""

WRITE_DATA = """
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
rows = int(_sys.argv[2]); rng = np.random.default_rng(1); w = None
for start in range(0, rows, 100_000):
    n = min(100_000, rows - start)
    t = pa.table({f"f{i}": rng.normal(size=n) for i in range(20)})
    w = w or pq.ParquetWriter(_sys.argv[1], t.schema)
    w.write_table(t)
w.close()
emit(ok=1)
"""

MLOOP_SETUP = TRAIN + """
import pickle, mloop, skops.io
with open(_sys.argv[1], "wb") as fh:
    pickle.dump(pipe, fh)
with open(_sys.argv[2], "wb") as fh:
    fh.write(skops.io.dumps(pipe))
mv = mloop.models.log_model(pipe, "bench", input_example=X.head(), register=True)
mloop.models.set_alias("bench", "champion", mv.version)
emit(version=mv.version)
"""

MLFLOW_SETUP = TRAIN + """
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
mlflow.set_tracking_uri(_sys.argv[1])
mlflow.sklearn.save_model(pipe, _sys.argv[2], input_example=X.head())
with mlflow.start_run():
    info = mlflow.sklearn.log_model(pipe, name="model", registered_model_name="bench", input_example=X.head())
MlflowClient().set_registered_model_alias("bench", "champion", info.registered_model_version)
emit(version=int(info.registered_model_version))
"""

HAND_LOOP = """
import pickle, time
import pyarrow as pa, pyarrow.parquet as pq
with open(_sys.argv[1], "rb") as fh:
    pipe = pickle.load(fh)
classes = pipe.classes_
pipe.predict_proba(pq.ParquetFile(_sys.argv[2]).read_row_group(0).slice(0, 10).to_pandas())  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
writer = None
for batch in pq.ParquetFile(_sys.argv[2]).iter_batches(batch_size=int(_sys.argv[4])):
    proba = pipe.predict_proba(batch.to_pandas())
    cols = {"prediction": pa.array(classes[proba.argmax(axis=1)])}
    cols.update({f"proba_{c}": pa.array(proba[:, i]) for i, c in enumerate(classes)})
    table = pa.table(cols)
    writer = writer or pq.ParquetWriter(_sys.argv[3], table.schema)
    writer.write_table(table)
writer.close()
emit(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0, rows=pq.ParquetFile(_sys.argv[3]).metadata.num_rows)
"""

MLOOP_BATCH = """
import time, mloop
import pyarrow.parquet as pq
model = mloop.models.load("bench@champion")
model.predict_proba(pq.ParquetFile(_sys.argv[1]).read_row_group(0).slice(0, 10).to_pandas())  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
model.predict_batch(_sys.argv[1], _sys.argv[2], batch_rows=int(_sys.argv[3]))
emit(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0, rows=pq.ParquetFile(_sys.argv[2]).metadata.num_rows)
"""

MLFLOW_BATCH = """
import time, mlflow.pyfunc
import pyarrow as pa, pyarrow.parquet as pq
model = mlflow.pyfunc.load_model(_sys.argv[1])
model.predict(pq.ParquetFile(_sys.argv[2]).read_row_group(0).slice(0, 10).to_pandas())  # warm-up
t0, c0 = time.perf_counter(), time.process_time()
writer = None
for batch in pq.ParquetFile(_sys.argv[2]).iter_batches(batch_size=int(_sys.argv[4])):
    table = pa.table({"prediction": pa.array(model.predict(batch.to_pandas()))})
    writer = writer or pq.ParquetWriter(_sys.argv[3], table.schema)
    writer.write_table(table)
writer.close()
emit(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0, rows=pq.ParquetFile(_sys.argv[3]).metadata.num_rows)
"""

MLOOP_LOAD = """
import sklearn, mloop
import pandas as pd
model = mloop.models.load("bench@champion")
print(model.predict(pd.DataFrame([{f"f{i}": 0.1 * i for i in range(20)}])))
emit(ok=1)
"""

# The floor both tools stand on: import sklearn, import skops, load the same .skops file, predict.
SKOPS_LOAD = """
import sklearn, skops.io
import pandas as pd
with open(_sys.argv[1], "rb") as fh:
    data = fh.read()
model = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
print(model.predict(pd.DataFrame([{f"f{i}": 0.1 * i for i in range(20)}])))
emit(ok=1)
"""

# What the cache hit stands on: import sklearn, unpickle the same pipeline, predict one row.
SKLEARN_LOAD = """
import sklearn, pickle
import pandas as pd
with open(_sys.argv[1], "rb") as fh:
    model = pickle.load(fh)
print(model.predict(pd.DataFrame([{f"f{i}": 0.1 * i for i in range(20)}])))
emit(ok=1)
"""

MLFLOW_LOAD = """
import sklearn, mlflow, mlflow.pyfunc
import pandas as pd
mlflow.set_tracking_uri(_sys.argv[1])
model = mlflow.pyfunc.load_model("models:/bench@champion")
print(model.predict(pd.DataFrame([{f"f{i}": 0.1 * i for i in range(20)}])))
emit(ok=1)
"""

# CPU seconds of a timed section: this process plus the child processes it waited for.
CPU_CLOCK = """
import resource as _resource, time as _time
def cpu_now():
    children = _resource.getrusage(_resource.RUSAGE_CHILDREN)
    return _time.process_time() + children.ru_utime + children.ru_stime
"""

MLOOP_LOG = TRAIN + CPU_CLOCK + """
import time, mloop, mloop.registry, mloop.tracking  # the tool imported, as `import mlflow, mlflow.sklearn` is
t0, c0 = time.perf_counter(), cpu_now()
with mloop.start_run(experiment="bench") as run:
    mv = run.log_model(pipe, "bench", input_example=X.head(), register=True)
emit(seconds=time.perf_counter() - t0, cpu=cpu_now() - c0, version=mv.version)
"""

SKOPS_DUMP = TRAIN + CPU_CLOCK + """
import time
t0, c0 = time.perf_counter(), cpu_now()
import skops.io
data = skops.io.dumps(pipe)
skops.io.get_untrusted_types(data=data)
emit(seconds=time.perf_counter() - t0, cpu=cpu_now() - c0)
"""

MLFLOW_LOG = TRAIN + CPU_CLOCK + """
import time, mlflow, mlflow.sklearn
mlflow.set_tracking_uri(_sys.argv[1])
t0, c0 = time.perf_counter(), cpu_now()
with mlflow.start_run():
    info = mlflow.sklearn.log_model(pipe, name="model", registered_model_name="bench", input_example=X.head())
emit(seconds=time.perf_counter() - t0, cpu=cpu_now() - c0, version=int(info.registered_model_version))
"""


def floor_target(name: str, goal: str, value: float | None, bound: float, floor: float | None,
                 floor_name: str) -> Target:
    """A ratio to MLflow's that must be <= `bound`; when it is not and the floor every tool stands on
    (measured in the same run) is itself over the bound, the verdict says so instead of NOT met."""
    shown = "—" if value is None else f"{value:.2f}x"
    if floor is not None:
        shown += f" (the {floor_name} floor alone {floor:.3f}x)"
    if value is None or value <= bound or floor is None or floor <= bound:
        return Target(name, goal, shown, None if value is None else value <= bound)
    return Target(name, goal, shown, None, why=f"out of reach: the {floor_name} floor alone is over it")


def main() -> None:
    args = parse_args("registry: mloop vs MLflow 3.17")
    size = QUICK if args.quick else FULL
    mlflow_py = None if args.quick else peer_venv("mlflow", MLFLOW_REQUIREMENTS).python
    # mloop and the floors run as a user's install has them (the dev venv in --quick runs)
    py = MLOOP_PYTHON if args.quick else mloop_runtime_venv().python
    rows = size["rows"]
    with fresh_dir("registry") as root:
        home, mlflow_dir = root / "mloop", root / "mlflow"
        home.mkdir()
        mlflow_dir.mkdir()
        env = {"MLOOP_HOME": str(home / ".mloop")}
        mlflow_uri = f"sqlite:///{mlflow_dir / 'mlflow.db'}"
        src = root / "input.parquet"
        log(f"writing {rows:,} rows x 20 float64 to {src}")
        run_python(WRITE_DATA, python=py, args=[str(src), str(rows)])
        run_python(MLOOP_SETUP, python=py, args=[str(root / "pipe.pkl"), str(root / "pipe.skops")], env=env, cwd=home)
        if mlflow_py:
            log("setting up MLflow's model and registry")
            run_python(MLFLOW_SETUP, python=mlflow_py, args=[mlflow_uri, str(mlflow_dir / "saved")], cwd=mlflow_dir)

        log("batch scoring")
        cases = {
            "hand": lambda: run_python(HAND_LOOP, python=py, args=[str(root / "pipe.pkl"), str(src), str(root / "hand.parquet"),
                                                        str(BATCH)]),
            "mloop": lambda: run_python(MLOOP_BATCH, python=py, args=[str(src), str(root / "mloop.parquet"), str(BATCH)],
                                        env=env, cwd=home),
        }
        if mlflow_py:
            cases["mlflow"] = lambda: run_python(MLFLOW_BATCH, python=mlflow_py, cwd=mlflow_dir, args=[
                str(mlflow_dir / "saved"), str(src), str(root / "mlflow.parquet"), str(BATCH)])
        scored = median_alternating(cases, size["batch_reps"])
        hand, ours, theirs = scored["hand"], scored["mloop"], scored.get("mlflow")
        for m in (hand, ours, theirs):
            assert m is None or m["rows"] == rows, m

        log("fresh-process load by alias + one prediction")
        cold_env = {**env, "MLOOP_MODEL_CACHE": "0"}  # the skops path, as on a machine that never saw the model
        cases = {"mloop": lambda: run_python(MLOOP_LOAD, python=py, env=env, cwd=home),
                 "mloop_cold": lambda: run_python(MLOOP_LOAD, python=py, env=cold_env, cwd=home),
                 "floor": lambda: run_python(SKOPS_LOAD, python=py, args=[str(root / "pipe.skops")], cwd=home),
                 "sklearn": lambda: run_python(SKLEARN_LOAD, python=py, args=[str(root / "pipe.pkl")], cwd=home)}
        if mlflow_py:
            cases["mlflow"] = lambda: run_python(MLFLOW_LOAD, python=mlflow_py, args=[mlflow_uri], cwd=mlflow_dir)
        loads = median_alternating(cases, size["load_reps"])

        log("log_model + register")
        cases = {"mloop": lambda: run_python(MLOOP_LOG, python=py, env=env, cwd=home),
                 "floor": lambda: run_python(SKOPS_DUMP, python=py, cwd=home)}
        if mlflow_py:
            cases["mlflow"] = lambda: run_python(MLFLOW_LOG, python=mlflow_py, args=[mlflow_uri], cwd=mlflow_dir)
        logs = median_alternating(cases, size["log_reps"])

    def rate(m):  # noqa: ANN001, ANN202
        return None if m is None else rows / m["seconds"]

    def cpu_rate(m):  # noqa: ANN001, ANN202
        return None if m is None else rows / m["cpu"]

    speed = ratio(rate(ours), rate(hand))
    load_r = ratio(loads["mloop"].wall_s, loads["mlflow"].wall_s) if "mlflow" in loads else None
    cold_r = ratio(loads["mloop_cold"].wall_s, loads["mlflow"].wall_s) if "mlflow" in loads else None
    log_r = ratio(logs["mloop"]["seconds"], logs["mlflow"]["seconds"]) if "mlflow" in logs else None
    x = lambda r: "—" if r is None else f"{r:.2f}x"  # noqa: E731
    table = [
        [f"batch scoring {rows:,} rows: rows/s", fmt(rate(ours)), fmt(rate(hand)), fmt(rate(theirs)),
         x(speed) + " of hand loop"],
        ["batch scoring: rows per CPU second", fmt(cpu_rate(ours)), fmt(cpu_rate(hand)), fmt(cpu_rate(theirs)),
         x(ratio(cpu_rate(ours), cpu_rate(hand))) + " of hand loop"],
        ["batch scoring: peak RSS (MB)", fmt(ours.peak_rss_mb), fmt(hand.peak_rss_mb),
         fmt(theirs.peak_rss_mb if theirs else None), ""],
        ["fresh process: import + load @champion + predict 1 row, load cache warm (s)", fmt(loads["mloop"].wall_s),
         fmt(loads["sklearn"].wall_s) + " (sklearn + pickle floor)",
         fmt(loads["mlflow"].wall_s if "mlflow" in loads else None), x(load_r)],
        ["same, load cache warm: CPU s", fmt(loads["mloop"].cpu_s), fmt(loads["sklearn"].cpu_s) + " (sklearn + pickle floor)",
         fmt(loads["mlflow"].cpu_s if "mlflow" in loads else None),
         x(ratio(loads["mloop"].cpu_s, loads["mlflow"].cpu_s) if "mlflow" in loads else None)],
        ["same, cold: MLOOP_MODEL_CACHE=0, the skops path (s)", fmt(loads["mloop_cold"].wall_s),
         fmt(loads["floor"].wall_s) + " (skops floor)",
         fmt(loads["mlflow"].wall_s if "mlflow" in loads else None), x(cold_r)],
        ["log_model + register (s)", fmt(logs["mloop"]["seconds"]), fmt(logs["floor"]["seconds"]) + " (skops floor)",
         fmt(logs["mlflow"]["seconds"] if "mlflow" in logs else None), x(log_r)],
        ["log_model + register: CPU s", fmt(logs["mloop"]["cpu"]), fmt(logs["floor"]["cpu"]) + " (skops floor)",
         fmt(logs["mlflow"]["cpu"] if "mlflow" in logs else None),
         x(ratio(logs["mloop"]["cpu"], logs["mlflow"]["cpu"]) if "mlflow" in logs else None)],
    ]
    targets = [
        Target("batch scoring rows/s", ">= 0.9x the hand-written loop", x(speed), None if speed is None else speed >= 0.9),
        Target("batch scoring peak RSS", "<= 1 GiB", f"{ours.peak_rss_mb:,.0f} MB",
               None if args.quick else ours.peak_rss_mb <= 1024),
        floor_target("load by alias + predict, fresh process (load cache warm)", "<= 1/3 of MLflow", load_r, 1 / 3,
                     ratio(loads["sklearn"].wall_s, loads["mlflow"].wall_s) if "mlflow" in loads else None,
                     "sklearn + pickle"),
        floor_target("log_model + register", "<= 1/10 of MLflow", log_r, 0.1,
                     ratio(logs["floor"]["seconds"], logs["mlflow"]["seconds"]) if "mlflow" in logs else None, "skops"),
    ]
    write_section("registry", "Registry: mloop vs MLflow 3.17 (SQLite)",
                  ["workload", "mloop", "hand-written loop / floor", "MLflow", "ratio"], table, targets, args=args,
                  notes=["every process runs in its tool's install: mloop, the hand-written loop and the floors in "
                         "a venv with mloop's runtime dependencies only (`pip install -e .`, no dev extras; in the dev "
                         "venv, scikit-learn's all_estimators, which skops runs on import, also imports pytest), "
                         "MLflow in its own",
                         "batch scoring: median of 3 alternating fresh processes, timed inside each around the scoring; "
                         "one warm-up prediction on 10 rows each first; same 65,536-row batches; MLflow's pyfunc `predict` writes labels only "
                         "(no probabilities); the input has 100,000-row row groups",
                         "load: median of 5 alternating fresh processes (wall time, imports included; CPU "
                         "seconds from wait4). Warm: the load cache holds the model (it is warm whenever this machine "
                         "logged or loaded the model before: the serving and batch case), so the process resolves "
                         "the alias with one stdlib-sqlite3 read (no SQLAlchemy import), unpickles a MAC-verified "
                         "local entry and never imports skops. Cold: MLOOP_MODEL_CACHE=0, the skops path from the artifact "
                         "store, as on a machine that never saw the model; "
                         "log_model: median of 3 fresh processes, timed around start_run + log_model once the tool is "
                         "imported (`import mloop.registry, mloop.tracking` / `import mlflow, mlflow.sklearn`); its "
                         "CPU seconds include finished children (MLflow's requirements-inference subprocess)",
                         "skops floor: what any skops-based save/load costs in a fresh process (import skops.io, "
                         "which imports every scikit-learn estimator module via all_estimators and looks up the "
                         "module of each scipy.special ufunc by scanning sys.modules, plus dumps or loads of the "
                         "same pipeline, ~3 ms); MLflow 3 saves scikit-learn models with skops too. log_model "
                         "cannot go below it: the model's digest, which the version row records, covers the skops "
                         "file"])


if __name__ == "__main__":
    main()
