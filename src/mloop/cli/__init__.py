"""The `mloop` command: a thin typer app; each command group lives in its own module.

Exit codes (DESIGN.md): 0 success; 1 a check that ran and failed; 2 bad usage or input (one-line
reason); 3 a runtime failure (traceback written to `$MLOOP_HOME/logs/`).
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
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


_built = False


def _build() -> typer.Typer:
    """Attach every group in GROUPS to the app (once); returns the app (tests use it with CliRunner)."""
    global _built
    if _built:
        return app
    _built = True
    for module_name, group in GROUPS:
        module = importlib.import_module(f"mloop.cli.{module_name}")
        if group is None:
            module.register(app)
        else:
            app.add_typer(module.app, name=group)
    return app


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `mloop` console script."""
    from mloop.cli.output import run_cli

    _build()
    sys.exit(run_cli(app, argv))
