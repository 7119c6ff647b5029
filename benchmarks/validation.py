"""Validation: mloop vs Great Expectations 1.x and pandera (pandas backend), issue 5 "Benchmarks".

The suite of ../shared/reference/peers.md: not-null on 5 columns, ranges on 5, value sets on 3, a
unique id and the row count (15 expectations) over 1,000,000 rows in a pandas DataFrame, with 0.1%
of the rows out of one range. Each tool runs in its own fresh process (peers in their own venvs):
the frame is read from one parquet file, the suite built, and one warm-up validation of the first
1,000 rows is done (imports and first-call setup are not the workload); then the measured call:

- CPU: `time.process_time()` around the validate call alone (all threads of the process);
- memory: the peak RSS above the RSS just before the call (VmHWM is reset through
  /proc/self/clear_refs right before, and read right after);
- how the failing rows come back: count, examples, row indices.

Median of 5 processes per tool, run alternately.

    .venv/bin/python benchmarks/validation.py            # full run, updates RESULTS.md
    .venv/bin/python benchmarks/validation.py --quick    # 20,000 rows, mloop only (what the test runs)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Target,
    fmt,
    fresh_dir,
    log,
    median_measure,
    parse_args,
    peer_venv,
    ratio,
    run_python,
    write_section,
)

GE_REQUIREMENTS = ["great_expectations==1.24.*", "pyarrow", "psutil"]
PANDERA_REQUIREMENTS = ["pandera[pandas]==0.35.*", "pyarrow", "psutil"]
FULL = {"rows": 1_000_000, "reps": 5}
QUICK = {"rows": 20_000, "reps": 1}

# Shared by every snippet: bounds of the 5 ranges, the 3 value sets, memory probes.
COMMON = r'''
import gc, os, time
import pandas as pd
RANGES = {"x1": (0.0, 100.0), "x2": (-50.0, 50.0), "x3": (0.0, 1.0), "x4": (10.0, 1000.0), "x5": (-1.0, 1.0)}
SETS = {"c1": ["a", "b", "c"], "c2": ["red", "green", "blue", "black"], "c3": ["north", "south", "east", "west", "mid"]}
NOT_NULL = ["x1", "x2", "x3", "x4", "x5"]
df = pd.read_parquet(_sys.argv[1])
ROWS = len(df)

def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

def measure(call):
    gc.collect()
    before = rss_kb("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to the current RSS
        f.write("5")
    c0, t0 = time.process_time(), time.perf_counter()
    out = call()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    peak = rss_kb("VmHWM:")
    return out, cpu, wall, (peak - before) / 1024
'''

MLOOP = COMMON + r'''
import mloop.validation as V
suite = V.Suite(
    [V.not_null(c) for c in NOT_NULL]
    + [V.Between(column=c, min=lo, max=hi) for c, (lo, hi) in RANGES.items()]
    + [V.InSet(column=c, values=v) for c, v in SETS.items()]
    + [V.Unique(column="id"), V.RowCount(min=ROWS, max=ROWS)])
data = _sys.argv[1] if _sys.argv[2] == "parquet" else df
if _sys.argv[2] == "parquet":  # warm up the same way: a small file of the first 1,000 rows
    warm = _sys.argv[1] + ".warm.parquet"
    df.iloc[:1000].to_parquet(warm, index=False)
    suite.validate(warm)
else:
    suite.validate(df.iloc[:1000])  # warm-up
res, cpu, wall, mem = measure(lambda: suite.validate(data))
failed = [r for r in res.results if not r.passed]
r = failed[0]
emit(cpu_s=cpu, wall_s=wall, mem_mb=mem, expectations=len(suite), failed=[f.name for f in failed],
     failing_count=r.failing_rows, examples=len(r.examples), indices=all("row" in e for e in r.examples),
     all_rows=len(res.failures(r.name)))
'''

GE = COMMON + r'''
import great_expectations as gx
import great_expectations.expectations as gxe
ctx = gx.get_context(mode="ephemeral")
bd = ctx.data_sources.add_pandas("pandas").add_dataframe_asset(name="frame").add_batch_definition_whole_dataframe("all")
suite = ctx.suites.add(gx.ExpectationSuite(name="bench"))
for c in NOT_NULL:
    suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=c))
for c, (lo, hi) in RANGES.items():
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi))
for c, v in SETS.items():
    suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=c, value_set=v))
suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column="id"))
suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=ROWS, max_value=ROWS))
small = df.iloc[:1000].copy()
bd.get_batch(batch_parameters={"dataframe": small}).validate(suite)  # warm-up
res, cpu, wall, mem = measure(lambda: bd.get_batch(batch_parameters={"dataframe": df}).validate(suite))
failed = [r for r in res.results if not r.success]
r = failed[0].result
emit(cpu_s=cpu, wall_s=wall, mem_mb=mem, expectations=len(suite.expectations),
     failed=[f.expectation_config.type + ":" + str(f.expectation_config.kwargs.get("column")) for f in failed],
     failing_count=r.get("unexpected_count"), examples=len(r.get("partial_unexpected_list") or []),
     indices=bool(r.get("partial_unexpected_index_list")), all_rows=None)
'''

PANDERA = COMMON + r'''
import pandera.pandas as pa
cols = {"id": pa.Column(int, unique=True)}
for c, (lo, hi) in RANGES.items():
    cols[c] = pa.Column(float, pa.Check.in_range(lo, hi), nullable=False)
for c, v in SETS.items():
    cols[c] = pa.Column(str, pa.Check.isin(v), nullable=True)
schema = pa.DataFrameSchema(cols, checks=[pa.Check(lambda d: len(d) == ROWS, element_wise=False,
                                                      name="row_count")], coerce=False)
def run(frame):
    try:
        schema.validate(frame, lazy=True)
        return None
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases
try:
    run(df.iloc[:1000])  # warm-up (fails the row count)
except Exception:
    pass
cases, cpu, wall, mem = measure(lambda: run(df))
rng = cases[cases["check"].astype(str).str.startswith("in_range")] if cases is not None else None
emit(cpu_s=cpu, wall_s=wall, mem_mb=mem, expectations=15,
     failed=sorted(set(cases["column"].astype(str) + ":" + cases["check"].astype(str))) if cases is not None else [],
     failing_count=None if rng is None else len(rng), examples=None if rng is None else len(rng),
     indices=bool(rng is not None and rng["index"].notna().all()), all_rows=None if rng is None else len(rng))
'''


def make_data(path: Path, rows: int) -> None:
    run_python(r'''
import numpy as np, pandas as pd
rows = int(_sys.argv[2])
rng = np.random.default_rng(0)
df = pd.DataFrame({
    "id": np.arange(rows, dtype="int64"),
    "x1": rng.uniform(0, 100, rows), "x2": rng.uniform(-50, 50, rows), "x3": rng.uniform(0, 1, rows),
    "x4": rng.uniform(10, 1000, rows), "x5": rng.uniform(-1, 1, rows),
    "c1": rng.choice(["a", "b", "c"], rows), "c2": rng.choice(["red", "green", "blue", "black"], rows),
    "c3": rng.choice(["north", "south", "east", "west", "mid"], rows),
})
bad = rng.choice(rows, rows // 1000, replace=False)   # 0.1% of the rows break x1's range
df.loc[bad, "x1"] = 150.0 + rng.uniform(0, 10, len(bad))
df.to_parquet(_sys.argv[1], index=False)
emit(rows=rows, bad=len(bad))
''', args=[str(path), str(rows)])


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "—" if value is None else value


def main() -> None:
    args = parse_args("validation: mloop vs Great Expectations 1.x and pandera")
    size = QUICK if args.quick else FULL
    ge_py = pandera_py = None
    if not args.quick:
        ge_py = peer_venv("great_expectations", GE_REQUIREMENTS).python
        pandera_py = peer_venv("pandera", PANDERA_REQUIREMENTS).python
    env = {"GX_ANALYTICS_ENABLED": "false", "OMP_NUM_THREADS": "2"}
    with fresh_dir("validation") as tmp:
        data = tmp / "data.parquet"
        make_data(data, size["rows"])
        cases = {
            "mloop (pandas)": lambda: run_python(MLOOP, args=[str(data), "pandas"], env=env),
            "mloop (parquet path)": lambda: run_python(MLOOP, args=[str(data), "parquet"], env=env),
        }
        if ge_py:
            cases["Great Expectations"] = lambda: run_python(GE, python=ge_py, args=[str(data)], env=env, cwd=tmp)
        if pandera_py:
            cases["pandera"] = lambda: run_python(PANDERA, python=pandera_py, args=[str(data)], env=env)
        log(f"validating {size['rows']:,} rows x {size['reps']} per tool")
        runs: dict[str, list] = {name: [] for name in cases}
        for _ in range(size["reps"]):  # alternating, as _common.median_alternating, keeping every run
            for name, case in cases.items():
                runs[name].append(case())
        got = {name: median_measure(ms) for name, ms in runs.items()}
    spread = {name: sorted(m.result["cpu_s"] for m in ms) for name, ms in runs.items()}

    def r(name: str, key: str):  # noqa: ANN202
        return got[name].result.get(key) if name in got else None

    m = "mloop (pandas)"
    measures = [("validate CPU s", "cpu_s"), ("validate wall s", "wall_s"),
                ("peak RSS above pre-call, MB", "mem_mb"), ("failing rows counted", "failing_count"),
                ("example values returned", "examples"), ("examples carry row indices", "indices"),
                ("every failing row available", "all_rows")]
    headers = ["measure", *got]
    rows = [[label, *[_cell(r(name, key)) for name in got]] for label, key in measures]
    cpu_ge, cpu_pa = ratio(r("Great Expectations", "cpu_s"), r(m, "cpu_s")), ratio(r("pandera", "cpu_s"), r(m, "cpu_s"))
    mem_ratio = ratio(r(m, "mem_mb"), r("Great Expectations", "mem_mb"))
    targets = [
        Target("validate CPU vs Great Expectations", ">= 10x less", "—" if cpu_ge is None else f"{cpu_ge:.1f}x less",
               None if cpu_ge is None else cpu_ge >= 10),
        Target("validate CPU vs pandera", ">= 3x less", "—" if cpu_pa is None else f"{cpu_pa:.1f}x less",
               None if cpu_pa is None else cpu_pa >= 3),
        Target("peak RSS above pre-call vs Great Expectations", "<= 1/3", "—" if mem_ratio is None
               else f"{mem_ratio:.2f} ({fmt(r(m, 'mem_mb'))} vs {fmt(r('Great Expectations', 'mem_mb'))} MB)",
               None if mem_ratio is None else mem_ratio <= 1 / 3),
    ]
    notes = [
        f"{size['rows']:,} rows x 10 columns, 15 expectations; 0.1% of rows out of x1's range; median of "
        f"{size['reps']} fresh processes per tool; each process warms up on the first 1,000 rows first.",
        "Failing rows — mloop: per expectation the count, the fraction of non-null rows, the observed "
        "min/max and 10 examples with their row positions; `result.failures(name)` returns every failing "
        "row with all its columns. Great Expectations (default SUMMARY format): unexpected_count/percent and "
        "a partial_unexpected_list of 20 values (with pandas index values). pandera (lazy): a failure_cases "
        "frame with every failing value and its index, raised as SchemaErrors.",
        "validate CPU s over the processes (min-max): " + "; ".join(
            f"{name} {fmt(v[0])}-{fmt(v[-1])}" for name, v in spread.items()) + ".",
        "The peers run on pandas 3 (arrow-backed strings), far faster here than the figures in peers.md "
        "(GE ~8 CPU s, pandera ~1.1 s). Three string value sets cost mloop ~33 ms of its ~50 ms (pyarrow's "
        "is_in, the same kernel pandas' isin uses), so the pandera ratio is sensitive to load: earlier full "
        "runs on 2026-12-01 measured 2.5x (not met) and 3.2x.",
        "mloop (parquet path): the same suite over the file itself, scanned by DuckDB (streaming); the "
        "pandas frame is still loaded in that process, so its RSS baseline is the same.",
    ]
    write_section("validation", "Validation: mloop vs Great Expectations and pandera", headers, rows, targets,
                  args=args, notes=notes)


if __name__ == "__main__":
    main()
