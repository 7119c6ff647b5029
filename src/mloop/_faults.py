"""Named crash points for crash-safety tests: `MLOOP_CRASH_AT=<label>` SIGKILLs the process there."""

from __future__ import annotations

import os
import signal


def crash_point(label: str) -> None:
    """Kill this process with SIGKILL if `MLOOP_CRASH_AT` names `label` (tests only)."""
    if os.environ.get("MLOOP_CRASH_AT") == label:
        os.kill(os.getpid(), signal.SIGKILL)
