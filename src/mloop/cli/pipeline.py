"""`mloop pipeline run | runs | show` and `mloop ci`."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli.output import console, ms_to_text, print_json, table

app = typer.Typer(help="Run pipelines and inspect their runs.", no_args_is_help=True)


@app.command("run")
def run(
    target: str = typer.Argument(..., help="FILE:NAME (NAME is the pipeline's Python attribute)."),
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    executor: str = typer.Option(None, "--executor", "-x", help="local, processes[:N], ray, ray://host:10001"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step even when a cached result exists."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run a pipeline; exit 1 when a gate fails, 3 when a step crashes."""
    from mloop.pipelines.ci import parse_params
    from mloop.pipelines.loader import load_pipeline

    pipeline = load_pipeline(target)
    values = parse_params(pipeline, param or [])
    result = pipeline.run(executor=executor, cache=not no_cache, raise_on_failure=False, **values)
    if as_json:
        print_json(result.to_dict())
    else:
        console().print(result.tree(), highlight=False)
    if not result.ok:
        from mloop.pipelines.ci import _failure_code

        code, reason = _failure_code(result)
        typer.echo(f"error: {reason}", err=True)
        raise typer.Exit(code)


@app.command("runs")
def runs(
    pipeline: str = typer.Option(None, "--pipeline", help="Only this pipeline's runs."),
    limit: int = typer.Option(50, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List pipeline runs, newest first."""
    from mloop.pipelines.records import list_runs

    rows = list_runs(pipeline=pipeline, limit=limit)
    if as_json:
        print_json(rows)
        return
    table(f"{len(rows)} pipeline run(s)", ["id", "pipeline", "status", "started", "duration", "steps"],
          [[r["id"], r["pipeline"], r["status"], ms_to_text(r["start_ms"]),
            f"{(r['end_ms'] - r['start_ms']) / 1000:.2f} s" if r.get("end_ms") else "",
            ", ".join(f"{n} {k.lower()}" for k, n in sorted(r["step_counts"].items()))] for r in rows])


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="A pipeline run id (or a unique prefix)."),
    logs: str = typer.Option(None, "--logs", help="Print the captured logs of this step."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a pipeline run: the DAG as a tree with status, duration and cache marks."""
    from mloop.pipelines.records import get_run

    result = get_run(run_id)
    if logs:
        typer.echo(result.step(logs).logs(), nl=False)
        return
    if as_json:
        print_json(result.to_dict())
        return
    console().print(result.tree(), highlight=False)
    failed = [s for s in result.steps if s.status == "FAILED" and s.error]
    for s in failed:
        typer.echo(f"\n{s.name} failed:\n{s.error.rstrip()}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="pipeline")
    root.command("ci")(ci)


def ci(
    pipeline: str = typer.Option(None, "--pipeline", help="FILE:NAME (default: pipeline.py, its one pipeline)."),
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    promote: bool = typer.Option(False, "--promote", help="When everything passes, move @champion to the new model."),
    first_model: bool = typer.Option(False, "--first-model", help="Pass gates when there is no champion yet."),
    executor: str = typer.Option(None, "--executor", "-x"),
    report: Path = typer.Option(None, "--report", help="Write the Markdown report here (default: "
                                "$GITHUB_STEP_SUMMARY, else mloop-ci-report.md)."),
    no_cache: bool = typer.Option(False, "--no-cache"),
) -> None:
    """Validate inputs, run the pipeline, apply its gates, write a Markdown report.

    Exit 0 passed, 1 a gate or validation failed, 2 bad input (or no champion without --first-model),
    3 a runtime failure."""
    import os

    from mloop.pipelines.ci import run_ci

    spec = pipeline or os.environ.get("MLOOP_PIPELINE") or "pipeline.py"
    result = run_ci(spec, param or [], promote=promote, first_model=first_model, executor=executor,
                    report=report, use_cache=not no_cache)
    if result.run is not None:
        console().print(result.run.tree(), highlight=False)
    where = f" (report: {result.report_path})" if result.report_path else ""
    if result.exit_code == 0:
        typer.echo(f"ci passed{where}")
    else:
        typer.echo(f"error: {result.reason}{where}", err=True)
    raise typer.Exit(result.exit_code)
