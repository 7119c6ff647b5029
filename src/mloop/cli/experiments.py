"""`mloop experiments list | delete | restore`."""

from __future__ import annotations

import typer

from mloop.cli.output import ms_to_text, print_json, table

app = typer.Typer(help="List, delete and restore experiments.", no_args_is_help=True)


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List experiments."""
    from mloop.store import get_store
    from mloop.store.tracking import ExperimentRepo

    exps = ExperimentRepo(get_store()).list(include_deleted=all_)
    if as_json:
        print_json(exps)
        return
    table("experiments", ["id", "name", "stage", "created", "user"],
          [[e["id"], e["name"], e["lifecycle_stage"], ms_to_text(e["created_ms"]), e["user"]] for e in exps])


@app.command("delete")
def delete(name: str) -> None:
    """Soft-delete an experiment (restore brings it back)."""
    from mloop.store import get_store
    from mloop.store.tracking import ExperimentRepo

    ExperimentRepo(get_store()).set_stage(name, "deleted")
    typer.echo(f"deleted experiment {name}")


@app.command("restore")
def restore(name: str) -> None:
    """Restore a deleted experiment."""
    from mloop.store import get_store
    from mloop.store.tracking import ExperimentRepo

    ExperimentRepo(get_store()).set_stage(name, "active")
    typer.echo(f"restored experiment {name}")
