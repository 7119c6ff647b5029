"""`mloop runs list | show | compare | delete | restore | artifacts`."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli.output import console, fmt, ms_to_text, print_json, table

app = typer.Typer(help="Search, inspect and compare tracked runs.", no_args_is_help=True)
artifacts_app = typer.Typer(help="List and download a run's artifacts.", no_args_is_help=True)
app.add_typer(artifacts_app, name="artifacts")


@app.command("list")
def list_(
    experiment: str = typer.Option(None, "--experiment", "-e"),
    filter_: str = typer.Option(None, "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.C = '1'\""),
    order_by: list[str] = typer.Option(None, "--order-by", help="e.g. 'metrics.auc DESC' (repeatable)"),
    limit: int = typer.Option(50, "--limit", min=1),
    all_: bool = typer.Option(False, "--all", help="Include deleted runs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, newest first, filtered with MLflow's search syntax."""
    import mloop

    runs = mloop.search_runs(experiment=experiment, filter=filter_, order_by=order_by or None, limit=limit,
                             include_deleted=all_)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    metric_keys = sorted({k for r in runs for k in r.metrics})[:6]
    param_keys = sorted({k for r in runs for k in r.params})[:6]
    table(f"{len(runs)} run(s)", ["id", "name", "experiment", "status", "started",
                                  *[f"params.{k}" for k in param_keys], *[f"metrics.{k}" for k in metric_keys]],
          [[r.id[:12], r.name, r.experiment, r.status, ms_to_text(r.start_time),
            *[r.params.get(k) for k in param_keys], *[r.metrics.get(k) for k in metric_keys]] for r in runs])


@app.command("show")
def show(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: status, params, latest metrics, tags, environment summary."""
    import mloop

    run = mloop.get_run(run_id)
    data = run.to_dict()
    env = run.environment
    data["environment"] = {k: env.get(k) for k in ("python", "platform", "git", "command")}
    data["error"] = run.error
    if as_json:
        print_json(data)
        return
    rows = [[k, data[k]] for k in ("id", "name", "experiment", "status", "parent_id", "user")]
    rows += [["started", ms_to_text(run.start_time)], ["ended", ms_to_text(run.end_time)]]
    rows += [[f"params.{k}", v] for k, v in run.params.items()]
    rows += [[f"metrics.{k}", v] for k, v in run.metrics.items()]
    rows += [[f"tags.{k}", v] for k, v in run.tags.items()]
    git = env.get("git") or {}
    if git:
        rows.append(["git", f"{git.get('commit', '')[:12]} on {git.get('branch')}{' (dirty)' if git.get('dirty') else ''}"])
    if run.error:
        rows.append(["error", run.error.strip().splitlines()[-1]])
    table(f"run {run.id}", ["field", "value"], rows)


@app.command("compare")
def compare(run_ids: list[str] = typer.Argument(..., help="Two or more run ids."),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Params and latest metrics side by side; rows that differ are highlighted."""
    import mloop
    from rich.table import Table

    runs = [mloop.get_run(r) for r in run_ids]
    keys = [("params", k) for k in sorted({k for r in runs for k in r.params})]
    keys += [("metrics", k) for k in sorted({k for r in runs for k in r.metrics})]
    if as_json:
        print_json({f"{kind}.{k}": {r.id: getattr(r, kind).get(k) for r in runs} for kind, k in keys})
        return
    t = Table(title="run comparison")
    t.add_column("key")
    for r in runs:
        t.add_column(f"{r.name} ({r.id[:8]})")
    for kind, k in keys:
        values = [getattr(r, kind).get(k) for r in runs]
        differs = len({fmt(v) for v in values}) > 1
        style = "bold yellow" if differs else None
        t.add_row(f"{kind}.{k}" + (" *" if differs else ""), *[fmt(v) for v in values], style=style)
    console().print(t)


@app.command("delete")
def delete(run_id: str) -> None:
    """Soft-delete a run (hidden from lists; `restore` brings it back)."""
    import mloop

    mloop.delete_run(run_id)
    typer.echo(f"deleted run {run_id}")


@app.command("restore")
def restore(run_id: str) -> None:
    """Restore a deleted run."""
    import mloop

    mloop.restore_run(run_id)
    typer.echo(f"restored run {run_id}")


@artifacts_app.command("list")
def artifacts_list(run_id: str, path: str = typer.Argument(""), as_json: bool = typer.Option(False, "--json")) -> None:
    """List a run's artifacts under PATH."""
    from mloop.tracking import artifacts

    items = artifacts.list(run_id, path)
    if as_json:
        print_json(items)
        return
    table(f"artifacts of {run_id}", ["path", "size", "kind", "digest"],
          [[a["path"], a["size"], "dir" if a["is_dir"] else "file", a["digest"][:20]] for a in items])


@artifacts_app.command("get")
def artifacts_get(run_id: str, path: str, dest: Path = typer.Option(Path("."), "--dest", "-o")) -> None:
    """Download an artifact (file or folder) into DEST."""
    from mloop.tracking import artifacts

    typer.echo(str(artifacts.download(run_id, path, dest)))
