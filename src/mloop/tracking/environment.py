"""What a run ran on: Python, platform, installed packages, command line and git state.

Never environment variables (they hold secrets). The git diff of tracked files, capped at 1 MiB,
is stored as a blob that the environment record points to.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from mloop.artifacts.hashing import digest_of_bytes

DIFF_CAP = 1 << 20


@lru_cache(maxsize=1)
def installed_packages() -> dict[str, str]:
    """Installed distributions and versions (read once per process)."""
    from importlib.metadata import distributions

    found = {}
    for dist in distributions():
        name = dist.metadata.get("Name")
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def git_state(cwd: Path | None = None) -> tuple[dict, bytes | None]:
    """`({"commit", "branch", "dirty"}, diff bytes or None)`; empty dict outside a git work tree."""
    cwd = cwd or Path.cwd()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {}, None
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip()
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    dirty = bool(status.strip())
    diff = None
    if dirty:
        raw = (_git(["diff", "HEAD"], cwd) or "").encode()
        diff = raw[:DIFF_CAP]
    info = {"commit": commit.strip(), "branch": branch, "dirty": dirty}
    if diff is not None and len(raw) > DIFF_CAP:
        info["diff_truncated"] = True
    return info, diff


def capture() -> tuple[str, dict, bytes | None]:
    """`(environment id, record, git diff bytes)`; the id is the digest of the canonical record."""
    git, diff = git_state()
    record = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": installed_packages(),
        "command": list(sys.argv),
        "git": git,
    }
    if diff:
        record["git"]["diff_digest"] = digest_of_bytes(diff)
    env_id = digest_of_bytes(json.dumps(record, sort_keys=True).encode())
    return env_id, record, diff
