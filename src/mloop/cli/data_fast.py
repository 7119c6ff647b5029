"""`mloop data add` and `mloop data status` without typer: the `mloop` entry point tries this first.

A command line this module fully understands runs here, without importing typer, pydantic or rich
(~0.1 CPU s of start-up). Anything else (`--help`, an unknown or repeated option, a missing value,
`--opt=` forms of short options) returns None and the typer app handles it, so help text and usage
errors are typer's own. The command bodies below are also what `cli/data.py` runs, so both paths
print the same text and exit with the same codes (tests/data/test_data_cli_fast.py runs both).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mloop.cli.plain import json_safe, one_line, write_traceback

_ADD_OPTIONS = {"--name": "name", "-n": "name", "--message": "message", "-m": "message"}
_ADD_FLAGS = {"--force": "force", "--json": "as_json"}
_STATUS_FLAGS = {"--json": "as_json"}


def run_fast(args: list[str]) -> int | None:
    """Run `mloop data ARGS` if ARGS is a plain `add` or `status` line; its exit code, else None."""
    command = parse_command(args)
    if command is None:
        return None
    import gc

    gc.disable()  # no cycle collection over the imports: add_command turns it back on for its work
    return _guarded(command)


def parse_command(args: list[str]) -> Callable[[], int] | None:
    """The command a plain `data add` / `data status` line runs, or None (then typer parses it)."""
    if not args:
        return None
    command, rest = args[0], args[1:]
    if command == "add":
        parsed = _parse(rest, _ADD_OPTIONS, _ADD_FLAGS)
        if parsed is None or len(parsed[0]) != 1 or "name" not in parsed[1]:
            return None
        (path,), opts = parsed
        return lambda: add_command(Path(path), opts["name"], opts.get("message"),
                                   force=opts.get("force", False), as_json=opts.get("as_json", False))
    if command == "status":
        parsed = _parse(rest, {}, _STATUS_FLAGS)
        if parsed is None or len(parsed[0]) > 1:
            return None
        target = Path(parsed[0][0]) if parsed[0] else None
        return lambda: status_command(target, as_json=parsed[1].get("as_json", False))
    return None


def _parse(args: list[str], options: dict[str, str], flags: dict[str, str]) -> tuple[list[str], dict] | None:
    """(positionals, {key: value}) for the plain forms `--opt VALUE`, `--opt=VALUE`, `-o VALUE`, `--flag`;
    None for anything else, which typer then parses (and reports)."""
    positionals: list[str] = []
    values: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            if not arg:
                return None
            positionals.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in flags and not eq:
            key, value = flags[name], True
        elif name in options and eq and name.startswith("--") and value:
            key = options[name]
        elif name in options and not eq and i < len(args) and args[i] and not args[i].startswith("-"):
            key, value = options[name], args[i]
            i += 1
        else:
            return None
        if key in values:
            return None
        values[key] = value
    return positionals, values


# -- the commands (cli/data.py runs these too) ------------------------------------------------

def add_command(path: Path, name: str, message: str | None, *, force: bool, as_json: bool) -> int:
    import gc

    from mloop.data.versions import add as add_version

    if not gc.isenabled():  # the fast path: what the imports made stays, never scanned again
        gc.freeze()
        gc.enable()
    dv = add_version(path, name=name, message=message, force=force)
    if as_json:
        print_json({**dv.to_dict(), "created": dv.created})
    elif dv.created:
        echo(f"added {dv.name}@{dv.version} ({dv.file_count} file(s), {size_text(dv.size)}, {dv.digest[:19]})")
    else:
        echo(f"unchanged: {dv.name}@{dv.version} already has this content ({dv.digest[:19]})")
    return 0


def status_command(target: Path | None, *, as_json: bool) -> int:
    """Print each pointer's state; exit code 1 when any is modified or missing (as `git diff
    --exit-code`; DVC's status exits 0 either way), else 0."""
    from mloop.data.status import CHANGED_STATES, status

    results = status(target)
    if as_json:
        print_json(results)
    else:
        if not results:
            echo("no pointers (.mloop files) found")
        for r in results:
            echo(f"{r['state']:>9}  {r['path']}  ({r['uri']})")
            for key in ("added", "removed", "modified"):
                for rel in r[key][:50]:
                    echo(f"           {key}: {rel}")
    return 1 if any(r["state"] in CHANGED_STATES for r in results) else 0


def size_text(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


# -- output and errors, as cli/output.py does them for the typer app ------------------------------

def echo(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_json(data: Any) -> None:
    """As `cli.output.print_json`: NaN and infinities as the strings "NaN", "Infinity", "-Infinity"."""
    import json

    echo(json.dumps(json_safe(data), indent=2, default=str, allow_nan=False))


def _guarded(fn: Callable[[], int]) -> int:
    """Run a command, mapping errors to exit codes with a one-line reason, as `cli.output.run_cli`."""
    from mloop.errors import MloopError

    try:
        return fn()
    except MloopError as exc:
        if exc.exit_code == 3:
            print(f"error: {one_line(exc)}\n(traceback in {write_traceback()})", file=sys.stderr)
        else:
            print(f"error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an unreachable service: keep the traceback, show one line
        print(f"error: {type(exc).__name__}: {one_line(exc)}\n(traceback in {write_traceback()})",
              file=sys.stderr)
        return 3

