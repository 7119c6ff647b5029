"""What a run ran on: Python, platform, installed packages, command line and git state.

Never environment variables (they hold secrets). The git diff of tracked files, capped at 1 MiB,
is stored as a blob that the environment record points to.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from mloop.artifacts.hashing import digest_of_bytes

DIFF_CAP = 1 << 20
# Set, these point git at a repository from anywhere: git is then always asked.
_GIT_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")


@lru_cache(maxsize=1)
def installed_packages() -> dict[str, str]:
    """Installed distributions and versions, `{normalised name: version}` (read once per process).

    Names and versions come from the `name-version.dist-info` folder names on `sys.path` (a
    directory listing, milliseconds), not from parsing every METADATA file (most of a second in a
    large environment); the first on the path wins, as it does for imports.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.scandir(entry or ".")
        except OSError:
            continue
        with listing:
            for item in listing:
                stem, dot, suffix = item.name.rpartition(".")
                if not dot or suffix not in ("dist-info", "egg-info"):
                    continue
                name, sep, rest = stem.partition("-")
                version = rest.split("-", 1)[0]
                if sep and version:
                    found.setdefault(_normalise(name), version)
    return dict(sorted(found.items()))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _may_be_in_git(cwd: Path) -> bool:
    """False only when git cannot find a repository from `cwd`, so its subprocess is not worth
    starting: no GIT_DIR / GIT_WORK_TREE in the environment, and neither `cwd` nor a parent holds
    `.git` (a folder, or a file as in worktrees and submodules) or a `HEAD` (a bare repository).
    Git's own discovery only ever narrows this (ceiling directories, filesystem boundaries).
    """
    if any(os.environ.get(var) for var in _GIT_LOCATION_VARS):
        return True
    try:
        cwd = cwd.resolve()  # git walks up from the physical directory it runs in
    except OSError:
        return True
    return any(_may_exist(folder / ".git") or _may_exist(folder / "HEAD") for folder in (cwd, *cwd.parents))


def _may_exist(path: Path) -> bool:
    """False only when `path` is certainly absent: a lookup we may not make counts as present."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def _git_diff(cwd: Path, cap: int) -> tuple[bytes, bool]:
    """`git diff HEAD` of tracked files as raw bytes, at most `cap` of them; (bytes, truncated)."""
    try:
        proc = subprocess.Popen(["git", "diff", "--no-color", "--no-ext-diff", "HEAD"], cwd=cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError:
        return b"", False
    assert proc.stdout is not None
    data = proc.stdout.read(cap + 1)
    truncated = len(data) > cap
    proc.stdout.close()  # git gets SIGPIPE if it had more to say
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return data[:cap], truncated


def git_state(cwd: Path | None = None) -> tuple[dict, bytes | None]:
    """`({"commit", "branch", "dirty"}, diff bytes or None)`; empty dict outside a git work tree."""
    if cwd is None:
        try:
            cwd = Path.cwd()
        except OSError:  # the working directory was removed under us
            return {}, None
    if not _may_be_in_git(cwd):
        return {}, None
    # one rev-parse answers both: the commit, then the branch ("HEAD" when detached)
    heads = _git(["rev-parse", "HEAD", "--abbrev-ref", "HEAD"], cwd)
    if heads is None:
        return {}, None
    commit, _, branch = heads.strip().partition("\n")
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    info: dict = {"commit": commit.strip(), "branch": branch.strip(), "dirty": bool(status.strip())}
    diff = None
    if info["dirty"]:
        diff, truncated = _git_diff(cwd, DIFF_CAP)
        if truncated:
            info["diff_truncated"] = True
    return info, diff or None


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
