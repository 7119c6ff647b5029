"""`mloop validate DATA ...` and `mloop suites init|list|show|save|attach|detach`."""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli.output import console, ms_to_text, print_json, table

suites_app = typer.Typer(help="Expectation suites: infer, store, show, attach to datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.add_typer(suites_app, name="suites")


def _data(text: str):  # noqa: ANN202
    """A path (file, folder or glob) as is; otherwise a dataset URI resolved by mloop.data."""
    from mloop.errors import InvalidInput, NotFound

    if Path(text).exists() or any(ch in text for ch in "*?["):
        return text
    if Path(text).suffix.lower() in (".parquet", ".csv", ".pq") and not text.startswith("datasets:/"):
        raise InvalidInput(f"cannot read {text!r}: no such file (give an existing parquet/csv file, folder or "
                           f"glob, or a dataset URI such as name@1)")
    if text.startswith("datasets:/") or "@" in text or "/" not in text:
        try:
            import mloop.data as data

            getter = getattr(data, "get", None)
            if getter is not None:
                return getter(text)
        except NotFound:
            raise
        except InvalidInput:
            pass
    raise InvalidInput(f"cannot read {text!r}: no such file, folder or dataset version")


def _suite(suite: str | None, reference: str | None, margin: float):  # noqa: ANN202
    from mloop.errors import InvalidInput
    from mloop.validation import Suite, get_suite, infer_suite

    if (suite is None) == (reference is None):
        raise InvalidInput("give exactly one of --suite NAME|FILE.yaml or --reference DATA")
    if reference is not None:
        return infer_suite(_data(reference), margin=margin)
    if suite.endswith((".yaml", ".yml")) or Path(suite).is_file():
        return Suite.load(suite)
    return get_suite(suite)


def validate(
    data: str = typer.Argument(..., help="A parquet/csv file, folder or glob, or a dataset URI (name@N)."),
    suite: str = typer.Option(None, "--suite", "-s", help="A stored suite (name, name@N) or a suite YAML file."),
    reference: str = typer.Option(None, "--reference", "-r", help="Infer the suite from this data or dataset URI."),
    margin: float = typer.Option(0.1, "--margin", help="Slack for an inferred suite (with --reference)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    html: Path = typer.Option(None, "--html", help="Also write a self-contained HTML report here."),
) -> None:
    """Validate data against a suite; exit 0 if every error-severity expectation passes, 1 if not."""
    the_suite = _suite(suite, reference, margin)
    result = the_suite.validate(_data(data))
    if html is not None:
        html.write_text(result.to_html())
    if as_json:
        print_json(result.to_dict())
    else:
        console().print(result)
        typer.echo(result.summary())
    if not result.ok:
        raise typer.Exit(1)


@suites_app.command("init")
def init(
    reference: str = typer.Option(..., "--reference", "-r", help="Data (path or dataset URI) to infer from."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the YAML here (default: print it)."),
    name: str = typer.Option(None, "--name", help="Also store the suite under this name (a new version)."),
    margin: float = typer.Option(0.1, "--margin", help="Slack: ranges widen by margin x range, and so on."),
) -> None:
    """Infer a suite from reference data; print or write its YAML, optionally store it."""
    from mloop.validation import infer_suite, save_suite

    suite = infer_suite(_data(reference), margin=margin, name=name)
    if output is not None:
        suite.save(output)
        typer.echo(f"wrote {output} ({len(suite)} expectations)")
    if name:
        stored = save_suite(suite, name)
        typer.echo(f"stored suite {stored.name}@{stored.version} ({len(stored)} expectations)")
    if output is None and not name:
        typer.echo(suite.to_yaml(), nl=False)


@suites_app.command("save")
def save(
    file: Path = typer.Argument(..., help="A suite YAML file."),
    name: str = typer.Option(None, "--name", help="Store under this name (default: the file's 'suite:')."),
) -> None:
    """Store a (hand-edited) suite YAML as the next version of its name."""
    from mloop.errors import InvalidInput
    from mloop.validation import Suite, save_suite

    suite = Suite.load(file)
    if not (name or suite.name):
        raise InvalidInput(f"{file} has no 'suite:' name; pass --name")
    stored = save_suite(suite, name)
    typer.echo(f"stored suite {stored.name}@{stored.version} ({len(stored)} expectations)")


@suites_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Stored suites (newest version of each) and the datasets they are attached to."""
    from mloop.validation import list_suites

    rows = list_suites()
    if as_json:
        print_json(rows)
        return
    table("suites", ["name", "version", "expectations", "attached to", "created", "user"],
          [[r["name"], r["version"], r["expectations"], ", ".join(r["datasets"]), ms_to_text(r["created_ms"]),
            r["user"]] for r in rows])


@suites_app.command("show")
def show(
    name: str = typer.Argument(..., help="name (latest), name@N or name/N"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Print a stored suite as YAML (or JSON)."""
    from mloop.validation import get_suite

    suite = get_suite(name)
    if as_json:
        print_json({"name": suite.name, "version": suite.version, **suite.to_dict()})
    else:
        typer.echo(f"# {suite.name}@{suite.version}")
        typer.echo(suite.to_yaml(), nl=False)


@suites_app.command("attach")
def attach(
    name: str = typer.Argument(..., help="Suite name (follows its latest version) or name@N (pinned)."),
    dataset: str = typer.Argument(..., help="Dataset name: every `mloop data add` of it validates first."),
) -> None:
    """Attach a suite to a dataset name."""
    from mloop.validation import attach as do_attach

    do_attach(name, dataset)
    typer.echo(f"attached suite {name} to dataset {dataset}")


@suites_app.command("detach")
def detach(dataset: str = typer.Argument(...)) -> None:
    """Stop validating `add`s of a dataset name."""
    from mloop.errors import NotFound
    from mloop.validation import detach as do_detach

    if not do_detach(dataset):
        raise NotFound(f"dataset {dataset!r} has no suite attached")
    typer.echo(f"detached {dataset}")
