"""CLI output that needs only the stdlib: an error's first line, a traceback file for bugs, and
JSON-safe values. Shared by the typer commands (cli/output.py) and the typer-free fast paths
(cli/data_fast.py)."""

from __future__ import annotations

import traceback
import uuid
from typing import Any


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


def json_safe(value: Any) -> Any:
    """NaN and infinities as the strings "NaN", "Infinity", "-Infinity" (proto3's JSON mapping, which
    MLflow's REST API also uses), recursively, so the output stays JSON."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
