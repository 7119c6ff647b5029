"""Pipelines: mloop vs Prefect 3 (issue 6 "Benchmarks"), in one run.

- a 100-step linear pipeline of trivial steps (`x + 1`), run locally in process: the run call's
  wall time, and the per-step overhead (wall / steps);
- a 10-step linear pipeline whose steps each sleep 1 s: its uncached run, then the same run again,
  all cached (mloop: the content-addressed step cache; Prefect: `cache_policy=INPUTS + TASK_SOURCE`
  with persisted results).

Each tool runs in its own fresh process (Prefect in its own venv, with its ephemeral API server and
a fresh PREFECT_HOME); both first run a one-step warm-up flow, so store creation, migrations and
server start-up are not counted in the measured calls.

    .venv/bin/python benchmarks/pipelines.py            # full run, updates RESULTS.md
    .venv/bin/python benchmarks/pipelines.py --quick    # 20 trivial steps, 3 x 0.2 s steps, mloop only
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Target, fresh_dir, log, parse_args, peer_venv, ratio, run_python, write_section  # noqa: E402

PREFECT_REQUIREMENTS = ["prefect==3.*"]
FULL = {"linear": 100, "slow": 10, "sleep": 1.0}
QUICK = {"linear": 20, "slow": 3, "sleep": 0.2}

MLOOP = r'''
import logging, os, time
logging.basicConfig(level=logging.WARNING)
linear_n, slow_n, sleep_s = int(_sys.argv[1]), int(_sys.argv[2]), float(_sys.argv[3])
import mloop

@mloop.step
def inc(x: int):
    return x + 1

@mloop.step
def slow(x: int, seconds: float):
    time.sleep(seconds)
    return x + 1

@mloop.pipeline(name="warm")
def warm():
    return inc(-1)

@mloop.pipeline(name="linear")
def linear(n: int):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x

@mloop.pipeline(name="slow")
def slow_flow(n: int, seconds: float):
    x = 0
    for _ in range(n):
        x = slow(x, seconds)
    return x

warm.run()
times = []
for rep in range(3):  # the first on a fresh store, then with the cache off: every step executes each time
    t = time.perf_counter(); run = linear.run(n=linear_n, cache=rep == 0); times.append(time.perf_counter() - t)
    assert run.outputs["output"] == linear_n and len(run.executed_steps) == linear_n
lin = sorted(times)[1]
t = time.perf_counter(); first = slow_flow.run(n=slow_n, seconds=sleep_s); uncached = time.perf_counter() - t
t = time.perf_counter(); again = slow_flow.run(n=slow_n, seconds=sleep_s); cached = time.perf_counter() - t
assert len(again.cached_steps) == slow_n and again.outputs["output"] == slow_n
emit(linear_s=lin, uncached_s=uncached, cached_s=cached)
'''

PREFECT = r'''
import logging, os, time
linear_n, slow_n, sleep_s = int(_sys.argv[1]), int(_sys.argv[2]), float(_sys.argv[3])
from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

@task
def inc(x: int):
    return x + 1

@task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def slow(x: int, seconds: float):
    time.sleep(seconds)
    return x + 1

@flow
def warm():
    return inc(-1)

@flow
def linear(n: int):
    x = 0
    for _ in range(n):
        x = inc(x)
    return x

@flow
def slow_flow(n: int, seconds: float):
    x = 0
    for _ in range(n):
        x = slow(x, seconds)
    return x

warm()
times = []
for rep in range(3):
    t = time.perf_counter(); out = linear(linear_n); times.append(time.perf_counter() - t)
    assert out == linear_n
lin = sorted(times)[1]
t = time.perf_counter(); slow_flow(slow_n, sleep_s); uncached = time.perf_counter() - t
t = time.perf_counter(); out = slow_flow(slow_n, sleep_s); cached = time.perf_counter() - t
assert out == slow_n
emit(linear_s=lin, uncached_s=uncached, cached_s=cached)
'''


def main() -> None:
    args = parse_args("pipelines: mloop vs Prefect 3")
    size = QUICK if args.quick else FULL
    prefect_py = None if args.quick else peer_venv("prefect", PREFECT_REQUIREMENTS).python
    argv = [str(size["linear"]), str(size["slow"]), str(size["sleep"])]
    got = {}
    with fresh_dir("pipelines") as tmp:
        log(f"mloop: {size['linear']} trivial steps, then {size['slow']} x {size['sleep']} s steps twice")
        home = tmp / "mloop"
        got["mloop"] = run_python(MLOOP, args=argv, env={"MLOOP_HOME": str(home / ".mloop")}, cwd=tmp)
        if prefect_py:
            log("Prefect: the same flows (ephemeral API server)")
            env = {"PREFECT_HOME": str(tmp / "prefect"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
                   "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_API_URL": "", "DO_NOT_TRACK": "1",
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
            got["Prefect 3"] = run_python(PREFECT, python=prefect_py, args=argv, env=env, cwd=tmp)

    def r(name: str, key: str):  # noqa: ANN202
        return got[name].result.get(key) if name in got else None

    n = size["linear"]
    headers = ["tool", f"{n} trivial steps, s", "per-step overhead, ms",
               f"{size['slow']} x {size['sleep']:g} s steps, uncached s", "same, all cached s", "process CPU s"]
    rows = [[name, r(name, "linear_s"), 1000 * r(name, "linear_s") / n, r(name, "uncached_s"), r(name, "cached_s"),
             got[name].cpu_s] for name in got]
    speedup = ratio(r("Prefect 3", "linear_s"), r("mloop", "linear_s"))
    own = ratio(r("mloop", "cached_s"), r("mloop", "uncached_s"))
    vs_prefect = ratio(r("mloop", "cached_s"), r("Prefect 3", "cached_s"))
    targets = [
        Target(f"{n}-step linear pipeline vs Prefect", ">= 5x faster",
               "—" if speedup is None else f"{speedup:.1f}x faster", None if speedup is None else speedup >= 5),
        Target("cached re-run vs its uncached run", "<= 1/20", "—" if own is None else f"1/{1 / own:.0f}",
               None if own is None else own <= 1 / 20),
        Target("cached re-run vs Prefect's cached re-run", "<= 1/2", "—" if vs_prefect is None else f"{vs_prefect:.2f}",
               None if vs_prefect is None else vs_prefect <= 1 / 2),
    ]
    notes = [
        "One run per tool, each in a fresh process after a one-step warm-up flow; wall time of the flow call "
        "(the trivial flow: median of 3 calls in that process, every step executed each time).",
        "mloop: local in-process executor, embedded SQLite store; every step writes its child run, step row, "
        "output blob and cache entry. Prefect 3: ephemeral API server (SQLite), default task runner.",
        f"per-step overhead = wall time of the {n}-step run / {n} (the step body is `x + 1`).",
    ]
    write_section("pipelines", "Pipelines: mloop vs Prefect 3", headers, rows, targets, args=args, notes=notes)


if __name__ == "__main__":
    main()
