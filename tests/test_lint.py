"""`make lint` stays clean: ruff over src, tests and benchmarks (the Makefile's lint target)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        found = shutil.which("ruff")
        if found is None:
            pytest.skip("ruff is not installed (pip install -e '.[dev]')")
        ruff = Path(found)
    targets = [t for t in ("src", "tests", "benchmarks") if (ROOT / t).is_dir()]
    proc = subprocess.run([str(ruff), "check", "--no-cache", *targets], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
