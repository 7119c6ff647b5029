"""`mloop models list | show | versions | search | alias | history | delete-alias | delete | restore | tag`
and `mloop predict` (batch scoring). Thin: each command calls one function of `mloop.models`."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli.output import ms_to_text, print_json, table

app = typer.Typer(help="Registered models: versions, aliases, history, search, delete and restore.",
                  no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Attach `mloop models ...` and the top-level `mloop predict`."""
    root.add_typer(app, name="models")
    root.command("predict")(predict)


@app.command("list")
def list_(all_: bool = typer.Option(False, "--all", help="Include deleted models."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """List registered models with their latest version and aliases."""
    import mloop

    models = mloop.models.list_models(include_deleted=all_)
    if as_json:
        print_json(models)
        return
    table(f"{len(models)} model(s)", ["name", "versions", "latest", "aliases", "updated", "description"],
          [[m["name"], m["versions"], m["latest_version"],
            ", ".join(f"{a}->{v}" for a, v in m["aliases"].items()), ms_to_text(m["updated_ms"]),
            m["description"]] for m in models])


@app.command("show")
def show(uri: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show one version (NAME/N, NAME@ALIAS, NAME@latest): run, signature, metrics, tags."""
    import mloop

    mv = mloop.models.get(uri)
    data = mv.to_dict()
    if as_json:
        print_json(data)
        return
    rows = [[k, data[k]] for k in ("uri", "flavor", "task", "run_id", "digest", "user", "description")]
    rows += [["aliases", ", ".join(mv.aliases)], ["created", ms_to_text(mv.created_at)],
             ["classes", mv.classes], ["datasets", ", ".join(mv.datasets)]]
    rows += [[f"input.{c['name']}", f"{c['dtype']}{' (nullable)' if c.get('nullable') else ''}"]
             for c in mv.signature.inputs]
    rows += [[f"metrics.{k}", v] for k, v in mv.metrics.items()]
    rows += [[f"tags.{k}", v] for k, v in mv.tags.items()]
    table(f"model {mv.name}/{mv.version}", ["field", "value"], rows)


def _versions_table(title: str, versions: list) -> None:
    table(title, ["name", "version", "aliases", "flavor", "task", "run", "created", "tags"],
          [[v.name, v.version, ", ".join(v.aliases), v.flavor, v.task, (v.run_id or "")[:12],
            ms_to_text(v.created_at), ", ".join(f"{k}={t}" for k, t in v.tags.items())] for v in versions])


@app.command("versions")
def versions(name: str, all_: bool = typer.Option(False, "--all", help="Include deleted versions."),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """List the versions of a model."""
    import mloop

    found = mloop.models.list_versions(name, include_deleted=all_)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    _versions_table(f"versions of {name}", found)


@app.command("search")
def search(filter_: str = typer.Argument(None, metavar="FILTER",
                                         help="e.g. \"name LIKE 'churn%' and version_tags.stage = 'ok'\""),
           limit: int = typer.Option(100, "--limit", min=1),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Search versions by name, model tags and version tags."""
    import mloop

    found = mloop.models.search(filter_, limit=limit)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    _versions_table(f"{len(found)} version(s)", found)


@app.command("alias")
def alias(name: str, alias_: str = typer.Argument(..., metavar="ALIAS"), version: int = typer.Argument(...),
          reason: str = typer.Option(None, "--reason", help="Why (kept in the alias history).")) -> None:
    """Point NAME@ALIAS at VERSION (recorded in the history, with a lineage edge)."""
    import mloop

    mloop.models.set_alias(name, alias_, version, reason=reason)
    typer.echo(f"{name}@{alias_} -> {version}")


@app.command("delete-alias")
def delete_alias(name: str, alias_: str = typer.Argument(..., metavar="ALIAS"),
                 reason: str = typer.Option(None, "--reason")) -> None:
    """Remove NAME@ALIAS."""
    import mloop

    mloop.models.delete_alias(name, alias_, reason=reason)
    typer.echo(f"deleted alias {name}@{alias_}")


@app.command("history")
def history(name: str, alias_: str = typer.Option(None, "--alias"),
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Every alias move of a model: from, to, when, who, why."""
    import mloop

    rows = mloop.models.alias_history(name, alias_)
    if as_json:
        print_json(rows)
        return
    table(f"alias history of {name}", ["alias", "from", "to", "when", "user", "reason"],
          [[r["alias"], r["from_version"], r["to_version"] if r["to_version"] is not None else "(deleted)",
            ms_to_text(r["ts"]), r["user"], r["reason"]] for r in rows])


@app.command("delete")
def delete(uri: str) -> None:
    """Soft-delete a version (NAME/N) or a whole model (NAME); `restore` brings it back."""
    import mloop

    mloop.models.delete(uri)
    typer.echo(f"deleted {uri}")


@app.command("restore")
def restore(uri: str) -> None:
    """Restore a deleted version or model."""
    import mloop

    mloop.models.restore(uri)
    typer.echo(f"restored {uri}")


@app.command("tag")
def tag(uri: str, pairs: list[str] = typer.Argument(..., help="KEY=VALUE (repeatable)")) -> None:
    """Tag a model (NAME) or a version (NAME/N)."""
    import mloop
    from mloop.errors import InvalidInput

    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"tags are KEY=VALUE, got {pair!r}")
        tags[key] = value
    mloop.models.set_tags(uri, tags)
    typer.echo(f"tagged {uri}: {', '.join(tags)}")


def predict(
    uri: str = typer.Argument(..., help="Model URI: NAME@ALIAS, NAME/N, runs:/ID/PATH."),
    input_: Path = typer.Option(..., "--input", "-i", help="A parquet or CSV file, or a folder of parquet files."),
    output: Path = typer.Option(..., "--output", "-o", help="The parquet file to write."),
    batch_rows: int = typer.Option(65_536, "--batch-rows", min=1),
    keep: list[str] = typer.Option(None, "--keep", help="Input columns to copy to the output (repeatable or a,b)."),
    trust: bool = typer.Option(False, "--trust", help="Allow pickle-based (pyfunc) models to load."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    executor: str = typer.Option(None, "--executor", "-x",
                                 help="ray or ray://host:port: spread batches over Ray workers (default: here)."),
) -> None:
    """Score a file with a model, streaming record batches (bounded memory), into a parquet file."""
    import mloop

    cols = [c for item in keep or [] for c in item.split(",") if c]
    if executor and executor != "local":
        from mloop.pipelines.batch import predict_distributed

        result = predict_distributed(uri, input_, output, executor=executor, batch_rows=batch_rows, keep=cols,
                                     trust=trust)
    else:
        result = mloop.models.load(uri, trust=trust).predict_batch(input_, output, batch_rows=batch_rows,
                                                                    keep=cols, progress=not quiet)
    rate = result["rows"] / result["seconds"] if result["seconds"] else 0.0
    typer.echo(f"scored {result['rows']} rows in {result['seconds']:.2f} s ({rate:,.0f} rows/s) -> {result['output']}")
