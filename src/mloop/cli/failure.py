"""How the CLI reports a failure: the message's first line, and a traceback file for bugs.
Stdlib only, so the typer-free fast paths (cli/data_fast.py) share it with cli/output.py."""

from __future__ import annotations

import traceback
import uuid


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (drivers append hints on further lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def write_traceback() -> str:
    """Write the current exception's traceback under $MLOOP_HOME/logs; the file's path (or <stderr>)."""
    try:
        from mloop.config import get_settings

        logs = get_settings().home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"error-{uuid.uuid4().hex[:12]}.log"
        path.write_text(traceback.format_exc())
        return str(path)
    except Exception:
        traceback.print_exc()
        return "<stderr>"
