"""Shared CLI plumbing: error-to-exit-code mapping, JSON output, rich tables."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from mloop.cli.plain import json_safe, one_line, write_traceback


def _signals() -> tuple[tuple, tuple, tuple]:
    """typer's Exit, Abort and usage-error classes (typer >= 0.2x vendors click; older typer uses it)."""
    try:
        from typer._click.exceptions import ClickException as UsageProblem
    except ImportError:
        from click import ClickException as UsageProblem
    return (typer.Exit,), (typer.Abort,), (UsageProblem,)


def run_cli(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run the app, mapping mloop errors to exit codes with a one-line reason on stderr."""
    from mloop.errors import MloopError

    exits, aborts, usage = _signals()
    try:
        code = app(args=argv, prog_name="mloop", standalone_mode=False)
        return code if isinstance(code, int) else 0  # typer returns Exit's code here
    except exits as exc:
        return exc.exit_code
    except aborts:
        print("aborted", file=sys.stderr)
        return 130
    except usage as exc:  # bad usage: typer prints the usage line and the reason
        exc.show()
        return 2
    except MloopError as exc:
        if exc.exit_code == 3:
            path = write_traceback()
            print(f"error: {one_line(exc)}\n(traceback in {path})", file=sys.stderr)
        else:
            print(f"error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an unreachable service: keep the traceback, show one line
        path = write_traceback()
        print(f"error: {type(exc).__name__}: {one_line(exc)}\n(traceback in {path})", file=sys.stderr)
        return 3


def print_json(data: Any) -> None:
    """Print machine-readable output; NaN and infinities as the strings "NaN", "Infinity" and
    "-Infinity" (proto3's JSON mapping, which MLflow's REST API also uses), so the output stays JSON."""
    typer.echo(json.dumps(json_safe(data), indent=2, default=str, allow_nan=False))


def console():  # noqa: ANN201
    """A rich console; when output is not a terminal it is 160 columns wide (ids stay whole)."""
    from rich.console import Console

    probe = Console()
    return Console(soft_wrap=False, width=probe.width if probe.is_terminal else 160)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Print a rich table; the first column (an id or a key) never wraps."""
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for i, col in enumerate(columns):
        t.add_column(col, overflow="fold", no_wrap=i == 0)
    for row in rows:
        t.add_row(*[fmt(v) for v in row])
    console().print(t)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"  # nan, inf and -inf print as such
    return str(value)


def ms_to_text(ms: int | None) -> str:
    if not ms:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
