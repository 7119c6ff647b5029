"""`mloop demo`: the whole loop on a generated churn dataset, one stage per capability.

Stages live in `demo/stages/NN_<room>.py`, each with a `TITLE` and `run(ctx)`; they run in file
order and share what they make through `ctx.state`. A stage prints with `ctx.say(text)` and
`ctx.table(title, columns, rows)` (demo/ sits below cli/, so it does not use `mloop.cli.output`).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAGES = Path(__file__).parent / "stages"


@dataclass
class DemoContext:
    """What stages share: the size knob, the seed, a console, and a state dict."""

    quick: bool
    seed: int
    console: Any
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return 4_000 if self.quick else 40_000

    def say(self, text: str) -> None:
        self.console.print(text)

    def table(self, title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
        """Print a rich table (floats to 4 significant digits, NaN as nan, None as blank)."""
        from rich.table import Table

        t = Table(title=title)
        for col in columns:
            t.add_column(col, overflow="fold")
        for row in rows:
            t.add_row(*[_cell(v) for v in row])
        self.console.print(t)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return str(value)


def stage_modules() -> list[str]:
    """Stage module names in run order."""
    return sorted(p.stem for p in STAGES.glob("[0-9][0-9]_*.py"))


def run_demo(*, quick: bool = False, seed: int = 7) -> DemoContext:
    """Run every stage in order; returns the context (for tests)."""
    from rich.console import Console

    import mloop

    probe = Console()
    ctx = DemoContext(quick=quick, seed=seed, console=probe if probe.is_terminal else Console(width=140))
    settings = mloop.config.get_settings()
    ctx.say(f"[bold]mloop demo[/bold] — store {settings.tracking_uri}, artifacts {settings.artifact_uri}")
    started = time.perf_counter()
    for name in stage_modules():
        module = importlib.import_module(f"mloop.demo.stages.{name}")
        ctx.say(f"\n[bold cyan]== {module.TITLE} ==[/bold cyan]")
        t0 = time.perf_counter()
        module.run(ctx)
        ctx.say(f"[dim]({time.perf_counter() - t0:.1f} s)[/dim]")
    ctx.say(f"\n[bold green]demo finished in {time.perf_counter() - started:.1f} s[/bold green]")
    return ctx
