"""Shared CLI plumbing: error-to-exit-code mapping, JSON output, rich tables."""

from __future__ import annotations

import json
import sys
import traceback
import uuid
from typing import Any

import click
import typer


def run_cli(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the app, mapping mloop errors to exit codes with a one-line reason on stderr."""
    from mloop.errors import MloopError

    try:
        app(args=argv, standalone_mode=False)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except click.ClickException as exc:  # bad usage
        exc.show()
        return 2
    except MloopError as exc:
        if exc.exit_code == 3:
            path = _write_traceback()
            print(f"error: {exc}\n(traceback in {path})", file=sys.stderr)
        else:
            print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an unreachable service: keep the traceback, show one line
        path = _write_traceback()
        print(f"error: {type(exc).__name__}: {exc}\n(traceback in {path})", file=sys.stderr)
        return 3


def _write_traceback() -> str:
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


def print_json(data: Any) -> None:
    """Print machine-readable output (NaN and infinities as null)."""
    typer.echo(json.dumps(_clean(data), indent=2, default=str))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def console():  # noqa: ANN201
    from rich.console import Console

    return Console(soft_wrap=False, width=max(100, Console().width))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a rich table."""
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[fmt(v) for v in row])
    console().print(t)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.6g}"
    return str(value)


def ms_to_text(ms: int | None) -> str:
    if not ms:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
