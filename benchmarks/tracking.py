"""Tracking: mloop vs MLflow 3.17, both on SQLite in fresh temp dirs (issue 2, "Benchmarks").

- log_metric one call at a time, and batched (mloop `log_metrics`, MLflow `log_batch` of 1,000):
  rate = N / time from process A's first call until process B (started first, polling
  `metric_history` every 20 ms) sees all N rows. Buffering is not free: mloop's flush is inside.
- search_runs over 10,000 runs, `metrics.m1 > 0.8 and params.p1 = 'a'` (~1,000 matches), fully
  loaded runs, the same runs from both (asserted); median of 3 in one warm process each.
- `python -c "import X"` and `X --help`: median of 5 alternating runs.

    .venv/bin/python benchmarks/tracking.py            # full run, updates RESULTS.md
    .venv/bin/python benchmarks/tracking.py --quick    # tiny, mloop only (what the test runs)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MLOOP_BIN,
    MLOOP_PYTHON,
    Target,
    fmt,
    fresh_dir,
    log,
    median_alternating,
    parse_args,
    peer_venv,
    ratio,
    run,
    run_python,
    start_python,
    write_section,
)

MLFLOW_REQUIREMENTS = ["mlflow==3.17.*"]
KEYS = [f"m{i}" for i in range(10)]  # the batched workload logs 10 keys per step
POLL_S = 0.02
FILTER = "metrics.m1 > 0.8 and params.p1 = 'a'"

FULL = {"single": 10_000, "batched": 100_000, "runs": 10_000, "search_reps": 3, "cli_reps": 5}
QUICK = {"single": 300, "batched": 2_000, "runs": 300, "search_reps": 1, "cli_reps": 1}

# -- snippets (argv: uri/home-specific values follow the snippet) ------------------------------------
MLFLOW_SETUP = """
from mlflow import MlflowClient
c = MlflowClient(tracking_uri=_sys.argv[1])
exp = c.create_experiment("bench")
emit(run_id=c.create_run(exp).info.run_id)
"""
MLOOP_SETUP = """
import mloop
run = mloop.start_run(experiment="bench")
run.end()
emit(run_id=run.id)
"""

POLL = """
import time
run_id, n, keys = _sys.argv[1], int(_sys.argv[2]), _sys.argv[3].split(",")
{open}
history(keys[0])  # connect and warm up before A starts
print("READY", flush=True)
polls = 0
while True:
    seen = sum(len(history(k)) for k in keys)
    polls += 1
    if seen >= n:
        break
    time.sleep({poll})
emit(t_seen=time.monotonic(), polls=polls, seen=seen)
"""
MLFLOW_OPEN = """
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=_sys.argv[4])
history = lambda k: client.get_metric_history(run_id, k)
"""
MLOOP_OPEN = """
import mloop
history = lambda k: mloop.metric_history(run_id, k)
"""

# A: logs N rows, then ends the run. argv: run_id, mode (single|batched), n, keys, [uri]
MLFLOW_LOG = """
import time
from mlflow import MlflowClient
from mlflow.entities import Metric
run_id, mode, n, keys = _sys.argv[1], _sys.argv[2], int(_sys.argv[3]), _sys.argv[4].split(",")
c = MlflowClient(tracking_uri=_sys.argv[5])
c.get_run(run_id)
t0, c0 = time.monotonic(), time.process_time()
if mode == "single":
    for i in range(n):
        c.log_metric(run_id, keys[0], float(i), step=i)
else:
    steps, batch = n // len(keys), []
    for s in range(steps):
        ts = int(time.time() * 1000)
        batch.extend(Metric(k, float(s), ts, s) for k in keys)
        if len(batch) >= 1000 or s == steps - 1:
            c.log_batch(run_id, metrics=batch)
            batch = []
t_calls, cpu = time.monotonic(), time.process_time() - c0
c.set_terminated(run_id)
emit(t0=t0, t_calls=t_calls, t_end=time.monotonic(), cpu_calls=cpu)
"""
MLOOP_LOG = """
import time
import mloop
run_id, mode, n, keys = _sys.argv[1], _sys.argv[2], int(_sys.argv[3]), _sys.argv[4].split(",")
run = mloop.start_run(run_id=run_id)
t0, c0 = time.monotonic(), time.process_time()
if mode == "single":
    log = run.log_metric
    for i in range(n):
        log(keys[0], float(i), step=i)
else:
    for s in range(n // len(keys)):
        run.log_metrics({k: float(s) for k in keys}, step=s)
t_calls, cpu = time.monotonic(), time.process_time() - c0
run.end()
emit(t0=t0, t_calls=t_calls, t_end=time.monotonic(), cpu_calls=cpu)
"""

# The search corpus: the same seeded runs in both stores.
GEN = """
import random
def gen(n):
    rng = random.Random(7)
    for i in range(n):
        params = {"p1": rng.choice("ab"), "p2": str(i), "p3": rng.choice(["x", "y", "z"])}
        metrics = {"m1": rng.random(), "m2": rng.random(), "m3": rng.gauss(0, 1)}
        tags = {"team": f"team-{i % 5}", "stage": rng.choice(["dev", "prod"])}
        yield i, params, metrics, tags
"""
MLFLOW_POPULATE = GEN + """
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
c = MlflowClient(tracking_uri=_sys.argv[2])
exp = c.create_experiment("search")
for i, params, metrics, tags in gen(int(_sys.argv[1])):
    r = c.create_run(exp, tags=tags, run_name=f"run-{i}")
    c.log_batch(r.info.run_id, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()])
    c.set_terminated(r.info.run_id)
emit(experiment_id=exp)
"""
MLOOP_POPULATE = GEN + """
import mloop
for i, params, metrics, tags in gen(int(_sys.argv[1])):
    with mloop.start_run(experiment="search", name=f"run-{i}", params=params, tags=tags) as run:
        run.log_metrics(metrics, step=0)
emit(done=1)
"""
SEARCH = """
import statistics, time
reps, filt = int(_sys.argv[1]), _sys.argv[2]
{open}
walls, cpus = [], []
for _ in range(reps):
    t, c0 = time.perf_counter(), time.process_time()
    found = search()
    walls.append(time.perf_counter() - t)
    cpus.append(time.process_time() - c0)
names = sorted(int(name(r).split("-")[1]) for r in found)
assert all(p1(r) == "a" and m1(r) > 0.8 and len(r_params(r)) == 3 and len(r_tags(r)) >= 2 for r in found)
emit(wall=statistics.median(walls), cpu=statistics.median(cpus), count=len(found), names=names)
"""
MLFLOW_SEARCH_OPEN = """
from mlflow import MlflowClient
c = MlflowClient(tracking_uri=_sys.argv[3])
exp_id = c.get_experiment_by_name("search").experiment_id
c.search_runs([exp_id], max_results=1)  # connect
search = lambda: c.search_runs([exp_id], filt, max_results=10_000)
name = lambda r: r.info.run_name
p1 = lambda r: r.data.params["p1"]
m1 = lambda r: r.data.metrics["m1"]
r_params = lambda r: r.data.params
r_tags = lambda r: r.data.tags
"""
MLOOP_SEARCH_OPEN = """
import mloop
mloop.search_runs(experiment="search", limit=1)  # connect
search = lambda: mloop.search_runs(experiment="search", filter=filt)
name = lambda r: r.name
p1 = lambda r: r.params["p1"]
m1 = lambda r: r.metrics["m1"]
r_params = lambda r: r.params
r_tags = lambda r: r.tags
"""


class Tool:
    """How to run one side (mloop or MLflow) against a fresh store in `home`."""

    def __init__(self, name: str, python: Path, home: Path, cli: Path) -> None:
        self.name, self.python, self.home, self.cli = name, python, home, cli
        self.is_mlflow = name == "MLflow"
        self.uri = f"sqlite:///{home / 'mlflow.db'}" if self.is_mlflow else f"sqlite:///{home / '.mloop/mloop.db'}"
        self.env = {} if self.is_mlflow else {"MLOOP_HOME": str(home / ".mloop"), "MLOOP_TRACKING_URI": self.uri}

    def py(self, code: str, *args: object, background: bool = False):  # noqa: ANN201
        extra = [str(a) for a in args] + ([self.uri] if self.is_mlflow else [])
        kw = {"python": self.python, "args": extra, "env": self.env, "cwd": self.home}
        return start_python(code, **kw) if background else run_python(code, **kw)


def metric_rate(tool: Tool, mode: str, n: int) -> dict:
    """N rows logged by process A; the time until process B's metric_history returns all of them."""
    run_id = tool.py(MLFLOW_SETUP if tool.is_mlflow else MLOOP_SETUP)["run_id"]
    keys = ",".join(KEYS[:1] if mode == "single" else KEYS)
    opener = MLFLOW_OPEN if tool.is_mlflow else MLOOP_OPEN
    poller = tool.py(POLL.format(open=opener, poll=POLL_S), run_id, n, keys, background=True)
    poller.wait_for_line("READY")
    a = tool.py(MLFLOW_LOG if tool.is_mlflow else MLOOP_LOG, run_id, mode, n, keys)
    b = poller.wait()
    assert b["seen"] == n, f"{tool.name}: B saw {b['seen']} rows, expected {n}"
    elapsed = b["t_seen"] - a["t0"]
    return {"rate": n / elapsed, "elapsed": elapsed, "cpu_us": a["cpu_calls"] / n * 1e6,
            "visible_after_s": b["t_seen"] - a["t_calls"], "n": n}


def search(tool: Tool, runs: int, reps: int) -> dict:
    log(f"{tool.name}: populating {runs:,} runs (not timed)")
    if tool.is_mlflow:
        tool.py(MLFLOW_POPULATE, runs)
    else:
        tool.py(MLOOP_POPULATE, runs)
    log(f"{tool.name}: search_runs x{reps}")
    opener = MLFLOW_SEARCH_OPEN if tool.is_mlflow else MLOOP_SEARCH_OPEN
    return tool.py(SEARCH.format(open=opener), reps, FILTER).result


def startup(mloop_py: Path, mlflow_venv, reps: int) -> dict:  # noqa: ANN001
    cases = {
        "import mloop": lambda: run([mloop_py, "-c", "import mloop"]),
        "mloop --help": lambda: run([MLOOP_BIN / "mloop", "--help"]),
    }
    if mlflow_venv is not None:
        cases["import mlflow"] = lambda: run([mlflow_venv.python, "-c", "import mlflow"])
        cases["mlflow --help"] = lambda: run([mlflow_venv.bin("mlflow"), "--help"])
    order = ["import mloop", "import mlflow", "mloop --help", "mlflow --help"]
    return median_alternating({k: cases[k] for k in order if k in cases}, reps)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    size = QUICK if args.quick else FULL
    mlflow_venv = None if args.quick else peer_venv("mlflow", MLFLOW_REQUIREMENTS)
    results: dict[str, dict[str, dict]] = {"mloop": {}, "MLflow": {}}
    sides = [("mloop", MLOOP_PYTHON)] + ([("MLflow", mlflow_venv.python)] if mlflow_venv else [])
    for mode in ("single", "batched"):
        for name, python in sides:
            with fresh_dir(f"{name}-{mode}") as home:
                log(f"{name}: {mode} log_metric, N={size[mode]:,}")
                results[name][mode] = metric_rate(Tool(name, python, home, MLOOP_BIN), mode, size[mode])
    for name, python in sides:
        with fresh_dir(f"{name}-search") as home:
            results[name]["search"] = search(Tool(name, python, home, MLOOP_BIN), size["runs"], size["search_reps"])
    if mlflow_venv is not None:
        a, b = results["mloop"]["search"], results["MLflow"]["search"]
        assert a["names"] == b["names"], f"search results differ: mloop {a['count']} runs, MLflow {b['count']}"
    log("start-up times")
    boot = startup(MLOOP_PYTHON, mlflow_venv, size["cli_reps"])
    table(args, size, results, boot)
    return 0


def table(args, size: dict, results: dict, boot: dict) -> None:  # noqa: ANN001
    mo, ml = results["mloop"], results["MLflow"]

    def get(side: dict, *path: str) -> float | None:
        for p in path:
            side = side.get(p) if isinstance(side, dict) else None
        return side

    def x(v: float | None) -> str:
        return "—" if v is None else f"{v:,.1f}x" if v >= 1 else f"1/{1 / v:,.1f}"

    rows, targets = [], []
    for mode, label, goal in (("single", "log_metric, one call at a time", 50),
                              ("batched", "log_metrics / log_batch(1,000)", 3)):
        r = ratio(get(mo, mode, "rate"), get(ml, mode, "rate"))
        rows.append([f"{label}: rows/s visible to another process (N={size[mode]:,})",
                     fmt(get(mo, mode, "rate")), fmt(get(ml, mode, "rate")), x(r)])
        rows.append([f"{label}: CPU µs per row in the logging process", fmt(get(mo, mode, "cpu_us")),
                     fmt(get(ml, mode, "cpu_us")), x(ratio(get(mo, mode, "cpu_us"), get(ml, mode, "cpu_us")))])
        rows.append([f"{label}: seconds from last call to visible", fmt(get(mo, mode, "visible_after_s")),
                     fmt(get(ml, mode, "visible_after_s")), ""])
        targets.append(Target(f"{label} rate", f">= {goal}x MLflow", x(r), None if r is None else r >= goal))
    count = get(mo, "search", "count")
    r = ratio(get(mo, "search", "wall"), get(ml, "search", "wall"))
    rows.append([f"search_runs over {size['runs']:,} runs, 2 clauses, {count:,} fully loaded: median s",
                 fmt(get(mo, "search", "wall")), fmt(get(ml, "search", "wall")), x(r)])
    rows.append(["search_runs: CPU s", fmt(get(mo, "search", "cpu")), fmt(get(ml, "search", "cpu")),
                 x(ratio(get(mo, "search", "cpu"), get(ml, "search", "cpu")))])
    targets.append(Target("search_runs time", "<= 1/5 of MLflow", x(r), None if r is None else r <= 0.2))
    for ours, theirs in (("import mloop", "import mlflow"), ("mloop --help", "mlflow --help")):
        a, b = boot[ours], boot.get(theirs)
        r = ratio(a.wall_s, b.wall_s if b else None)
        rows.append([f"`{ours}` vs `{theirs}`: median wall s ({size['cli_reps']} alternating)", fmt(a.wall_s),
                     fmt(b.wall_s if b else None), x(r)])
        rows.append([f"`{ours}` vs `{theirs}`: CPU s, peak RSS MB", f"{fmt(a.cpu_s)}, {fmt(a.peak_rss_mb)}",
                     f"{fmt(b.cpu_s)}, {fmt(b.peak_rss_mb)}" if b else "—",
                     x(ratio(a.cpu_s, b.cpu_s if b else None))])
        targets.append(Target(f"`{ours}` wall time", f"<= 1/4 of `{theirs}`", x(r), None if r is None else r <= 0.25))
    notes = [
        "Both on SQLite files in fresh temp dirs; MLflow 3.17 in benchmarks/.venvs/mlflow, MLflow through "
        "`MlflowClient` (its cheapest path), mloop through `Run.log_metric(s)` and `mloop.search_runs`.",
        f"Rates: N rows / (time from process A's first call until process B, started first and polling "
        f"`metric_history` every {POLL_S * 1000:.0f} ms, sees all N). A ends its run after the last call "
        "(mloop's end_run flushes its buffer). Batched: 10 keys per step; MLflow sends 1,000 rows per log_batch, "
        "mloop one log_metrics call of 10 keys per step (its writer batches).",
        f"search_runs: `{FILTER}`; the same seeded runs in both stores, the same run set asserted; "
        f"median of {size['search_reps']} calls in one warm process each; population not timed.",
    ]
    if args.quick:
        notes.append("--quick: tiny sizes, MLflow skipped; figures are not comparable with a full run.")
    write_section("tracking", "Tracking: mloop vs MLflow 3.17 (SQLite)", ["workload", "mloop", "MLflow", "ratio"],
                  rows, targets, args=args, notes=notes)


if __name__ == "__main__":
    sys.exit(main())
