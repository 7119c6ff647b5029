"""Who and when: the `user` and `*_ms` values every row records (stdlib only, for store/quick.py)."""

from __future__ import annotations

import getpass
import os
import time


def now_ms() -> int:
    """Milliseconds since the epoch, UTC: how every timestamp is stored."""
    return time.time_ns() // 1_000_000


def current_user() -> str:
    """Who is writing: `MLOOP_USER` if set, else the login name."""
    user = os.environ.get("MLOOP_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"
