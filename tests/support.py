"""Helpers shared by tests: import them with `from support import wait_until, run_cli, ...`.

(`tests/` is on sys.path through pytest's `pythonpath` setting; importing from `conftest` is
ambiguous once a sub-folder has its own conftest.py.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

PG_ADMIN_DSN = os.environ.get("MLOOP_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_PREFIX = "mloop_test_"
REDIS_URL = os.environ.get("MLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- helpers --------------------------------------------------------------------------------
def wait_until(predicate, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate` until it returns truthy or the deadline passes (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120):
    """Run `mloop ARGS` in a subprocess with this interpreter; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "mloop", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def invoke_cli(*args: str):
    """Run `mloop ARGS` in this process (fast; same exit-code mapping as the console script).

    Returns an object with `returncode`, `stdout` and `stderr`, like `run_cli`.
    """
    from types import SimpleNamespace

    from typer.testing import CliRunner

    from mloop.cli import _build
    from mloop.cli.output import run_cli as _run

    with CliRunner().isolation() as streams:
        code = _run(_build(), list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return SimpleNamespace(returncode=code, stdout=out.decode(), stderr=err.decode())
