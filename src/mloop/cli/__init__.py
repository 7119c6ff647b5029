"""The `mloop` command: a thin typer app; each command group lives in its own module.

Exit codes (DESIGN.md): 0 success; 1 a check that ran and failed; 2 bad usage or input (one-line
reason); 3 a runtime failure (traceback written to `$MLOOP_HOME/logs/`).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def _new_app() -> Any:
    import typer  # here, not at the top: `mloop data add/status` run without it (cli/data_fast.py)

    return typer.Typer(
        name="mloop",
        help="mloop: track, version, validate, pipeline, serve and monitor models, in one loop.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


# Command groups (module in mloop.cli, typer sub-app name or None for top-level commands).
GROUPS: list[tuple[str, str | None]] = [
    ("core", None),
    ("experiments", "experiments"),
    ("runs", "runs"),
    ("models", None),
    ("data", "data"),
    ("validation", None),
    ("serving", None),
    ("pipeline", None),
]


_app: Any = None


def __getattr__(name: str) -> Any:
    if name == "app":
        return _build()
    raise AttributeError(f"module 'mloop.cli' has no attribute {name!r}")


def _build() -> Any:
    """The typer app with every group in GROUPS attached (once); tests use it with CliRunner."""
    global _app
    if _app is None:
        app = _new_app()
        for module_name, group in GROUPS:
            module = importlib.import_module(f"mloop.cli.{module_name}")
            if group is None:
                module.register(app)
            else:
                app.add_typer(module.app, name=group)
        _app = app
    return _app


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `mloop` console script."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["data"]:
        from mloop.cli.data_fast import run_fast

        code = run_fast(args[1:])
        if code is not None:
            sys.exit(code)
    from mloop.cli.output import run_cli

    sys.exit(run_cli(_build(), argv))
