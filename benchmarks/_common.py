"""What every benchmark shares: peer venvs, measured subprocesses, medians, and RESULTS.md sections.

A benchmark script measures mloop and a peer side by side in one run:

    from _common import MLOOP_PYTHON, Target, parse_args, peer_venv, run_python, write_section

    args = parse_args("tracking: mloop vs MLflow")
    mlflow_py = None if args.quick else peer_venv("mlflow", ["mlflow==3.17.*"]).python
    m = run_python("import mloop; emit(ok=1)")            # Measure(wall_s, cpu_s, peak_rss_mb, result)
    write_section("tracking", "Tracking", headers, rows, targets, args=args)

Snippets run as `python -c` in a fresh process; they call `emit(**values)` to hand numbers back
(one JSON line on stdout). CPU seconds and peak RSS come from `os.wait4` on that one child, so
they include its own children and nothing else.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"
RESULTS = BENCH_DIR / "RESULTS.md"
MLOOP_PYTHON = Path(sys.executable) if (REPO / ".venv") in Path(sys.executable).parents else REPO / ".venv/bin/python"
MLOOP_BIN = MLOOP_PYTHON.parent

# Environment every peer process gets: no telemetry, no usage logging, no colour codes in output.
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "NML_DISABLE_USAGE_LOGGING": "1",
    "NO_COLOR": "1",
}
_MARK = "BENCH_RESULT "
_PRELUDE = (
    "import json as _json, sys as _sys\n"
    "def emit(**values):\n"
    f"    print({_MARK!r} + _json.dumps(values), flush=True)\n"
)


def log(message: str) -> None:
    """Progress to stderr (stdout is the table)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- peer venvs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name


def peer_venv(name: str, requirements: Sequence[str]) -> Venv:
    """`benchmarks/.venvs/<name>` with `requirements` installed; built once (a stamp file records
    what was installed, so changing the requirements rebuilds it)."""
    venv = Venv(VENVS / name)
    stamp = venv.path / ".bench-requirements"
    wanted = "\n".join(requirements) + "\n"
    if stamp.is_file() and stamp.read_text() == wanted and venv.python.exists():
        return venv
    log(f"building peer venv {venv.path} with {' '.join(requirements)} (once)")
    if venv.path.exists():
        shutil.rmtree(venv.path)
    subprocess.run([sys.executable, "-m", "venv", str(venv.path)], check=True)  # based on the base python
    subprocess.run([str(venv.python), "-m", "pip", "install", "-q", *requirements], check=True)
    stamp.write_text(wanted)
    return venv


def mloop_runtime_venv() -> Venv:
    """mloop as `pip install mloop` leaves it (no dev extras: no pytest, moto, ray...), editable so it
    runs this checkout's code; rebuilt when pyproject.toml changes. The dev venv differs from what a
    user runs: scikit-learn's `all_estimators`, which skops calls on import, imports pytest when it is
    installed (~45 ms), a cost no production install pays and the peers' venvs do not have."""
    import hashlib

    tag = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:10]
    for stale in VENVS.glob("mloop-runtime-*"):  # built for an earlier pyproject.toml (~1 GB each)
        if stale.name != f"mloop-runtime-{tag}":
            shutil.rmtree(stale, ignore_errors=True)
    return peer_venv(f"mloop-runtime-{tag}", ["-e", str(REPO)])


# -- measured processes -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    """One process: wall time, CPU seconds (user + system, its children included), peak RSS,
    and what the snippet emitted."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    result: dict = field(default_factory=dict)
    stdout: str = ""

    def __getitem__(self, key: str):  # noqa: ANN204
        return self.result[key]


class Proc:
    """A started process; `wait()` returns its Measure (raises if it failed)."""

    def __init__(self, cmd: Sequence[str | os.PathLike], env: Mapping[str, str] | None, cwd: Path | None,
                 timeout: float) -> None:
        self.cmd = [str(c) for c in cmd]
        self.timeout = timeout
        self._out = tempfile.TemporaryFile(mode="w+")
        self._err = tempfile.TemporaryFile(mode="w+")
        full_env = {**os.environ, **QUIET_ENV, **(env or {})}
        self._t0 = time.perf_counter()
        self.popen = subprocess.Popen(self.cmd, stdout=self._out, stderr=self._err, env=full_env, cwd=cwd,
                                      stdin=subprocess.DEVNULL)

    def wait(self) -> Measure:
        remaining = self.timeout - (time.perf_counter() - self._t0)
        killer = threading.Timer(max(remaining, 0.0), self.popen.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(self.popen.pid, 0)  # blocking: the parent burns no CPU meanwhile
        finally:
            killer.cancel()
        wall = time.perf_counter() - self._t0
        if wall > self.timeout:
            raise TimeoutError(f"{self.cmd[:3]} did not finish in {self.timeout:.0f} s\n{self._read(self._err)}")
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        out, err = self._read(self._out), self._read(self._err)
        if self.popen.returncode != 0:
            raise RuntimeError(f"{' '.join(self.cmd)[:200]} exited {self.popen.returncode}:\n{err[-4000:]}")
        result: dict = {}
        for line in out.splitlines():
            if line.startswith(_MARK):
                result.update(json.loads(line[len(_MARK):]))
        return Measure(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, result, out)

    def read_stdout(self) -> str:
        """What the process printed so far (for a handshake with a running process)."""
        self._out.flush()
        pos = self._out.tell()
        self._out.seek(0)
        text = self._out.read()
        self._out.seek(pos)
        return text

    def wait_for_line(self, text: str, timeout: float = 120.0) -> None:
        """Block until the process has printed a line containing `text`."""
        deadline = time.perf_counter() + timeout
        while text not in self.read_stdout():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.cmd[:3]} exited before printing {text!r}:\n{self._read(self._err)[-4000:]}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.cmd[:3]} did not print {text!r} in {timeout:.0f} s")
            time.sleep(0.005)

    @staticmethod
    def _read(f) -> str:  # noqa: ANN001
        f.seek(0)
        return f.read()


def start(cmd: Sequence[str | os.PathLike], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
          timeout: float = 1800.0) -> Proc:
    """Start a command; `.wait()` measures it."""
    return Proc(cmd, env, cwd, timeout)


def run(cmd: Sequence[str | os.PathLike], **kw) -> Measure:  # noqa: ANN003
    """Run a command to completion and measure it."""
    return start(cmd, **kw).wait()


def start_python(code: str, *, python: Path = MLOOP_PYTHON, args: Sequence[str] = (), **kw) -> Proc:  # noqa: ANN003
    """Start a Python snippet (with `emit(**values)` defined) in a venv; mloop's own by default.
    The snippet sees its extra `args` as `sys.argv[1:]`."""
    return start([python, "-c", _PRELUDE + code, *args], **kw)


def run_python(code: str, **kw) -> Measure:  # noqa: ANN003
    return start_python(code, **kw).wait()


def median_alternating(cases: Mapping[str, Callable[[], Measure]], n: int) -> dict[str, Measure]:
    """Run every case `n` times, alternating (a b a b ...), and keep the per-field medians."""
    seen: dict[str, list[Measure]] = {name: [] for name in cases}
    for _ in range(n):
        for name, fn in cases.items():
            seen[name].append(fn())
    return {name: median_measure(ms) for name, ms in seen.items()}


def median_measure(ms: Sequence[Measure]) -> Measure:
    numeric = {k for k, v in ms[0].result.items() if isinstance(v, (int, float))}
    return Measure(
        statistics.median(m.wall_s for m in ms),
        statistics.median(m.cpu_s for m in ms),
        statistics.median(m.peak_rss_mb for m in ms),
        {**ms[0].result, **{k: statistics.median(m.result[k] for m in ms) for k in numeric}},
    )


@contextmanager
def fresh_dir(prefix: str) -> Iterator[Path]:
    """A new empty temp folder outside the repo (so no git state leaks in), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"mloop-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- arguments and results --------------------------------------------------------------------------
def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """`--quick` (tiny sizes, peers skipped: what tests run) and `--results PATH` (where the section
    goes; by default RESULTS.md for a full run, nowhere for --quick)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, peers skipped (for tests)")
    parser.add_argument("--results", type=Path, default=None, help="Markdown file to update")
    args = parser.parse_args(argv)
    if args.results is None and not args.quick:
        args.results = RESULTS
    compile_mloop()
    return args


def compile_mloop() -> None:
    """Write mloop's bytecode, as `pip install` does for a regular install (the peers' venvs have
    theirs). An editable install run under PYTHONDONTWRITEBYTECODE=1 (set on these machines) would
    otherwise compile every mloop module from source in every measured process."""
    import compileall

    compileall.compile_dir(str(REPO / "src" / "mloop"), quiet=1)


@dataclass(frozen=True)
class Target:
    """A figure to reach: `name` and `goal` as text, and whether it was met (None: not measured,
    or `why` says why no verdict applies)."""

    name: str
    goal: str
    value: str
    met: bool | None
    why: str | None = None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return self.why or "not measured"
        return "met" if self.met else "NOT met"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing."""
    return None if a is None or b is None or b == 0 else a / b


def fmt(x: float | int | str | None, digits: int = 3) -> str:
    """A number for a table: thousands separators, `digits` significant figures, '—' for missing."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if isinstance(x, int) or abs(x) >= 10 ** digits:
        return f"{round(x):,}"
    return f"{x:.{digits}g}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers], *[[c if isinstance(c, str) else fmt(c) for c in r] for r in rows]]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def machine() -> str:
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {platform.machine()}, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def write_section(name: str, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]],
                  targets: Sequence[Target], *, args: argparse.Namespace, notes: Sequence[str] = ()) -> str:
    """Print the benchmark's table and targets, and replace its own section of the results file
    (between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`), leaving the other sections alone."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"### {title}", "", f"{stamp}; {machine()}{'; --quick' if args.quick else ''}", "",
            markdown_table(headers, rows), ""]
    if targets:
        body += [markdown_table(["target", "goal", "measured", "verdict"],
                                [[t.name, t.goal, t.value, t.verdict] for t in targets]), ""]
    body += [f"- {n}" for n in notes]
    text = "\n".join(body).rstrip() + "\n"
    print(text)
    if args.results is not None:
        _replace_section(Path(args.results), name, text)
    return text


def _replace_section(path: Path, name: str, text: str) -> None:
    start_mark, end_mark = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start_mark}\n{text}{end_mark}"
    old = path.read_text() if path.exists() else "# Benchmark results\n\nWritten by `benchmarks/*.py` (`make bench`).\n"
    pattern = re.compile(re.escape(start_mark) + ".*?" + re.escape(end_mark), re.S)
    new = pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    os.replace(tmp, path)
