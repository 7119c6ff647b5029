"""Every benchmark script runs in --quick mode (tiny sizes, no peer venv) and prints its table;
the RESULTS.md writer replaces only its own section."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import run_all  # noqa: E402


@pytest.mark.parametrize("script", run_all.scripts(), ids=lambda p: p.stem)
def test_benchmark_quick_prints_a_table(script: Path, tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    venvs_before = set((BENCH / ".venvs").glob("*"))
    out = subprocess.run([sys.executable, str(script), "--quick", "--results", str(results)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("|---"))  # the first table
    assert rule > 0 and lines[rule - 1].startswith("| "), "a table header precedes the rule"
    assert lines[rule + 1].startswith("| ")
    assert "mloop" in out.stdout
    text = results.read_text()
    assert "<!-- bench:" in text and "<!-- /bench:" in text and "--quick" in text
    assert set((BENCH / ".venvs").glob("*")) == venvs_before, "--quick must not build a peer venv"


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    args = argparse.Namespace(quick=True, results=results)
    target = _common.Target("speed", ">= 2x", "3.0x", True)
    _common.write_section("a", "A", ["k", "mloop"], [["x", 1.5]], [target], args=args)
    _common.write_section("b", "B", ["k", "mloop"], [["y", 2]], [], args=args)
    _common.write_section("a", "A", ["k", "mloop"], [["z", 12345.6]], [], args=args)
    text = results.read_text()
    assert text.count("<!-- bench:a -->") == 1 and text.count("<!-- bench:b -->") == 1
    assert "| z | 12,346 |" in text and "| x |" not in text and "| y | 2 |" in text
    assert text.index("<!-- bench:a -->") < text.index("<!-- bench:b -->")


def test_measured_snippet_reports_values_cpu_and_rss() -> None:
    m = _common.run_python("x = bytes(range(256)) * (200 * 1024)\nsum(range(2_000_000))\nemit(n=len(x))",
                           python=Path(sys.executable))
    assert m["n"] == 50 * 1024 * 1024
    assert m.cpu_s > 0 and m.wall_s > 0
    assert m.peak_rss_mb >= 50
    with pytest.raises(RuntimeError, match="exited 3"):
        _common.run_python("raise SystemExit(3)", python=Path(sys.executable))
