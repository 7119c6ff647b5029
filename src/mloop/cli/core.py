"""Top-level commands: `mloop init`, `mloop lineage`, `mloop demo`."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli.output import print_json, table


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("lineage")(lineage)
    app.command("demo")(demo)


def init(
    path: Path = typer.Argument(Path("."), help="Project folder to create .mloop/ in."),
    ci: str = typer.Option(None, "--ci", help="Also write a CI workflow (github)."),
) -> None:
    """Create `.mloop/` (the embedded store, artifacts, cache and logs) in a project folder."""
    from mloop.artifacts import get_blob_store
    from mloop.config import get_settings, init_home
    from mloop.store import get_store

    home = init_home(path)
    settings = get_settings()
    if settings.home == home:
        get_store()  # creates and migrates the embedded store now, not on first use
        get_blob_store()
        typer.echo(f"initialised {home}")
    else:
        typer.echo(f"initialised {home} (note: settings point elsewhere, home is {settings.home})")
    if ci:
        from mloop.cli import ci_templates  # added by the pipelines work

        typer.echo(f"wrote {ci_templates.write(ci, path)}")


def lineage(
    uri: str = typer.Argument(..., help="runs:/ID, models:/NAME/N, datasets:/NAME@N, ..."),
    direction: str = typer.Option("both", "--direction", help="up (where it came from), down, or both."),
    depth: int = typer.Option(10, "--depth", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Walk lineage edges from an entity, upstream and downstream."""
    from mloop.tracking.lineage import walk

    edges = walk(uri, direction=direction, depth=depth)
    if as_json:
        print_json([e.__dict__ for e in edges])
        return
    table(f"lineage of {uri}", ["from", "relation", "to", "when", "user"],
          [[f"{e.from_kind}:{e.from_id}", e.relation, f"{e.to_kind}:{e.to_id}", _when(e.ts), e.user] for e in edges])


def _when(ms: int) -> str:
    from mloop.cli.output import ms_to_text

    return ms_to_text(ms)


def demo(
    quick: bool = typer.Option(False, "--quick", help="Small data and grids (well under 30 s)."),
    seed: int = typer.Option(7, "--seed"),
) -> None:
    """Run the whole loop on a generated churn dataset, stage by stage."""
    from mloop.demo import run_demo

    run_demo(quick=quick, seed=seed)
