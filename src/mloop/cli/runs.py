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
    experiment: list[str] = typer.Option(None, "--experiment", "-e", help="Experiment name or id (repeatable)."),
    filter_: str = typer.Option(None, "--filter", "-f", help="e.g. \"metrics.auc > 0.8 and params.C = '1'\""),
    order_by: list[str] = typer.Option(None, "--order-by", help="e.g. 'metrics.auc DESC' (repeatable)"),
    limit: int = typer.Option(50, "--limit", min=1),
    all_: bool = typer.Option(False, "--all", help="Include deleted runs."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List runs, newest first, filtered with MLflow's search syntax."""
    import mloop

    runs = mloop.search_runs(experiment=experiment or None, filter=filter_, order_by=order_by or None, limit=limit,
                             include_deleted=all_)
    if as_json:
        print_json([_as_dict(r) for r in runs])
        return
    metric_keys = sorted({k for r in runs for k in r.metrics})[:6]
    param_keys = sorted({k for r in runs for k in r.params})[:6]
    table(f"{len(runs)} run(s)", ["id", "name", "experiment", "status", "started",
                                  *[f"params.{k}" for k in param_keys], *[f"metrics.{k}" for k in metric_keys]],
          [[r.id, r.name, r.experiment, r.status, ms_to_text(r.start_time),
            *[r.params.get(k) for k in param_keys], *[r.metrics.get(k) for k in metric_keys]] for r in runs])


def _as_dict(run) -> dict:  # noqa: ANN001
    """A run for --json, with NaN and infinite metrics kept (print_json writes them as strings)."""
    data = run.to_dict()
    data["metrics"] = run.metrics
    return data


@app.command("show")
def show(run_id: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one run: status, params, latest metrics, tags, environment summary."""
    import mloop

    run = mloop.get_run(run_id)
    data = _as_dict(run)
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
    """Params and latest metrics side by side; rows that differ are highlighted (and marked *)."""
    import mloop

    if len(run_ids) < 2:
        from mloop.errors import InvalidInput

        raise InvalidInput("compare needs two or more run ids")
    runs = [mloop.get_run(r) for r in run_ids]
    rows = comparison(runs)
    if as_json:
        print_json({"runs": [{"id": r.id, "name": r.name, "experiment": r.experiment} for r in runs],
                    "rows": rows})
        return
    from rich.table import Table

    t = Table(title="run comparison (* = differs)")
    t.add_column("key")
    for r in runs:
        t.add_column(f"{r.name} ({r.id[:8]})")
    for row in rows:
        values = [fmt(row["values"][r.id]) for r in runs]
        t.add_row(row["key"] + (" *" if row["differs"] else ""), *values,
                  style="bold yellow" if row["differs"] else None)
    console().print(t)


def comparison(runs: list) -> list[dict]:
    """One row per param and latest metric: `{"key", "values": {run id: value}, "differs"}`.

    A key a run lacks counts as a difference; two NaNs are the same value.
    """
    rows = []
    for kind in ("params", "metrics"):
        for key in sorted({k for r in runs for k in getattr(r, kind)}):
            values = {r.id: getattr(r, kind).get(key) for r in runs}
            shown = {fmt(v) if v is not None else None for v in values.values()}
            rows.append({"key": f"{kind}.{key}", "values": values, "differs": len(shown) > 1})
    return rows


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
def artifacts_list(run_id: str, path: str = typer.Argument("", help="A folder (or file) in the run's artifacts."),
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """List a run's artifacts directly under PATH (folders end in /)."""
    import mloop.artifacts

    items = mloop.artifacts.list(run_id, path)
    if as_json:
        print_json(items)
        return
    table(f"artifacts of run {run_id}" + (f" under {path}" if path else ""), ["path", "size", "digest"],
          [[a["path"] + ("/" if a["is_dir"] else ""), a["size"], a["digest"] or ""] for a in items])


@artifacts_app.command("get")
def artifacts_get(run_id: str, path: str = typer.Argument("", help="A file or folder; all artifacts if omitted."),
                  dest: Path = typer.Option(Path("."), "--dest", "-o", help="Folder to write into.")) -> None:
    """Download an artifact (a file or a whole folder) into DEST, verified; prints the written path."""
    import mloop.artifacts

    typer.echo(str(mloop.artifacts.download(run_id, path, dest)))
