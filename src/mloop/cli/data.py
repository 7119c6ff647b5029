"""`mloop data add | list | log | show | status | diff | checkout | delete | restore | remote | push |
pull | gc | profile`. Thin: each command calls one function of `mloop.data` and prints.

Imports stay inside the commands: `mloop data status` must not pay for the database layer. `add`
and `status` run the bodies in cli/data_fast.py, which the `mloop` entry point also runs without
typer for a plain command line.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mloop.cli.data_fast import add_command, status_command
from mloop.cli.data_fast import size_text as _size
from mloop.cli.output import print_json

app = typer.Typer(help="Version datasets: add, diff, checkout, push and pull content-addressed data.",
                  no_args_is_help=True)
remote_app = typer.Typer(help="Configure remotes (another folder, s3://..., any fsspec URL).", no_args_is_help=True)
app.add_typer(remote_app, name="remote")


@app.command("add")
def add(
    path: Path = typer.Argument(..., help="A file or folder (parquet/csv files are profiled as tables)."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name, e.g. churn-train."),
    message: str = typer.Option(None, "--message", "-m"),
    force: bool = typer.Option(False, "--force", help="Commit even if a check refuses the version."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Version a file or folder as the next version of NAME (and write PATH.mloop)."""
    _exit(add_command(path, name, message, force=force, as_json=as_json))


def _exit(code: int) -> None:
    if code:
        raise typer.Exit(code)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """List datasets with their latest version."""
    from mloop.cli.output import ms_to_text, table
    from mloop.data.versions import list_datasets

    rows = list_datasets()
    if as_json:
        print_json(rows)
        return
    table(f"{len(rows)} dataset(s)", ["name", "latest", "versions", "updated"],
          [[r["name"], r["latest"], r["versions"], ms_to_text(r["updated_ms"])] for r in rows])


@app.command("log")
def log(name: str, all_: bool = typer.Option(False, "--all", help="Include deleted versions."),
        as_json: bool = typer.Option(False, "--json")) -> None:
    """The versions of NAME, newest first."""
    from mloop.cli.output import ms_to_text, table
    from mloop.data.versions import log_versions

    versions = log_versions(name, include_deleted=all_)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    table(f"{name}: {len(versions)} version(s)", ["version", "digest", "files", "size", "rows", "created", "user",
                                                   "message", "state"],
          [[v.version, v.digest[7:19], v.file_count, _size(v.size), v.rows, ms_to_text(v.created_at), v.user,
            v.message, "deleted" if v.deleted else ""] for v in versions])


@app.command("show")
def show(uri: str, as_json: bool = typer.Option(False, "--json"),
         profile: bool = typer.Option(False, "--profile", help="Include the full profile (with --json).")) -> None:
    """One version: digest, files, schema and column summary."""
    from mloop.cli.output import fmt, ms_to_text, table
    from mloop.data.versions import resolve

    dv = resolve(uri)
    if as_json:
        out = dv.to_dict()
        out["files"] = [{"path": e.path, "digest": e.digest, "size": e.size} for e in dv.files]
        if profile and dv.profile is not None:
            out["profile"] = dv.profile.to_dict()
        print_json(out)
        return
    d = dv.to_dict()
    rows = [[k, d[k]] for k in ("uri", "digest", "format", "file_count", "rows", "message", "user", "source")]
    rows.append(["created", ms_to_text(dv.created_at)])
    rows.append(["size", _size(dv.size)])
    table(dv.uri, ["field", "value"], rows)
    if dv.profile is not None:
        table("columns", ["column", "dtype", "nulls", "distinct", "min", "max", "mean"],
              [[n, c["dtype"], c["nulls"], c["distinct"], fmt(c["min"]), fmt(c["max"]), c["mean"]]
               for n, c in dv.profile.columns.items()])
    elif dv.is_dir:
        shown = dv.files[:20]
        table(f"files ({dv.file_count})", ["path", "size", "digest"],
              [[e.path, _size(e.size), e.digest[7:19]] for e in shown])


@app.command("status")
def status(target: Path = typer.Argument(None, help="A data path, pointer or folder (default: the project)."),
           as_json: bool = typer.Option(False, "--json")) -> None:
    """Compare the working tree with its pointers; exit code 1 when any data is modified or missing."""
    _exit(status_command(target, as_json=as_json))


@app.command("diff")
def diff(a: str, b: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Files added/removed/changed between two versions; for tables, schema, rows and moved columns."""
    from mloop.cli.output import table
    from mloop.data.diff import diff as diff_versions

    d = diff_versions(a, b)
    if as_json:
        print_json(d.to_dict())
        return
    typer.echo(f"{d.a} -> {d.b}: {'identical' if d.identical else 'changed'}")
    for key in ("added", "removed", "changed"):
        for rel in getattr(d, key)[:50]:
            typer.echo(f"  {key}: {rel}")
    if d.rows is not None:
        typer.echo(f"  rows: {d.rows['a']} -> {d.rows['b']} ({d.rows['change']:+d})")
        for key in ("added", "removed"):
            if d.schema[key]:
                typer.echo(f"  columns {key}: {', '.join(d.schema[key])}")
        for r in d.schema["retyped"]:
            typer.echo(f"  column {r['name']}: {r['a']} -> {r['b']}")
    if d.columns:
        table("columns that moved most", ["column", "score", "mean a", "mean b", "shift (std)", "TV",
                                          "null rate a", "null rate b"],
              [[c["name"], c["score"], c.get("mean_a"), c.get("mean_b"), c.get("mean_shift_in_std"),
                c.get("total_variation"), c["null_rate_a"], c["null_rate_b"]] for c in d.columns])


@app.command("checkout")
def checkout(
    target: str = typer.Argument(None, help="A URI, a pointer or data path (default: every pointer)."),
    dest: Path = typer.Option(None, "--dest", "-o", help="Where to write (default: the pointer's place)."),
    link: str = typer.Option("copy", "--link", help="copy (reflink where possible) or hardlink (read-only)."),
) -> None:
    """Write a version's files out (every pointer's data when no target is given)."""
    from mloop.data.checkout import checkout as do_checkout
    from mloop.errors import InvalidInput

    if link not in ("copy", "hardlink"):
        raise InvalidInput(f"--link must be copy or hardlink, not {link!r}")
    results = do_checkout(target, dest, link=link)  # type: ignore[arg-type]
    if not results:
        typer.echo("no pointers (.mloop files) found")
    for r in results:
        typer.echo(f"{r['uri']} -> {r['path']}: {r['written']} written, {r['unchanged']} unchanged, "
                   f"{r['removed']} removed")


@app.command("delete")
def delete(uri: str) -> None:
    """Soft-delete a version (restore brings it back)."""
    from mloop.data.versions import delete as delete_version

    dv = delete_version(uri)
    typer.echo(f"deleted {dv.name}@{dv.version} (restore with 'mloop data restore {dv.name}@{dv.version}')")


@app.command("restore")
def restore(uri: str) -> None:
    """Restore a soft-deleted version."""
    from mloop.data.versions import restore as restore_version

    dv = restore_version(uri)
    typer.echo(f"restored {dv.name}@{dv.version}")


@remote_app.command("add")
def remote_add(name: str, url: str, default: bool = typer.Option(False, "--default")) -> None:
    """Name a remote; --default makes push/pull use it without --remote."""
    from mloop.data.remotes import remote_add as add_remote

    r = add_remote(name, url, default=default)
    typer.echo(f"remote {r['name']} -> {r['url']}{' (default)' if r['is_default'] else ''}")


@remote_app.command("list")
def remote_list(as_json: bool = typer.Option(False, "--json")) -> None:
    from mloop.cli.output import table
    from mloop.data.remotes import remote_list as list_remotes

    rows = list_remotes()
    if as_json:
        print_json(rows)
        return
    table("remotes", ["name", "url", "default"], [[r["name"], r["url"], "yes" if r["is_default"] else ""]
                                                   for r in rows])


@remote_app.command("remove")
def remote_remove(name: str) -> None:
    from mloop.data.remotes import remote_remove as remove

    remove(name)
    typer.echo(f"removed remote {name}")


def _progress(label: str):  # noqa: ANN202
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


@app.command("push")
def push(targets: list[str] = typer.Argument(None, help="URIs or pointers (default: every version)."),
         remote: str = typer.Option(None, "--remote", "-r")) -> None:
    """Send the blobs the remote lacks."""
    from mloop.data.remotes import push as do_push

    bar, update = _progress("push")
    with bar:
        result = do_push(targets or None, remote=remote, progress=update)
    typer.echo(f"pushed {result['pushed']} of {result['blobs']} blob(s) ({_size(result['bytes'])}) "
               f"to {result['remote']}")


@app.command("pull")
def pull(targets: list[str] = typer.Argument(None, help="URIs or pointers (default: the project's pointers)."),
         remote: str = typer.Option(None, "--remote", "-r"),
         no_checkout: bool = typer.Option(False, "--no-checkout", help="Fetch blobs only.")) -> None:
    """Fetch the blobs the local store lacks, then check the pointers' data out."""
    from mloop.data.remotes import pull as do_pull

    bar, update = _progress("pull")
    with bar:
        result = do_pull(targets or None, remote=remote, progress=update, checkout=not no_checkout)
    typer.echo(f"pulled {result['pulled']} of {result['blobs']} blob(s) from {result['remote']}")
    for r in result["checked_out"]:
        typer.echo(f"{r['uri']} -> {r['path']}: {r['written']} written, {r['unchanged']} unchanged")


@app.command("gc")
def gc(yes: bool = typer.Option(False, "--yes", help="Delete (default: a dry run that only reports)."),
       as_json: bool = typer.Option(False, "--json")) -> None:
    """Delete blobs nothing references that are older than 24 hours."""
    from mloop.data.garbage import gc as collect

    result = collect(dry_run=not yes)
    if as_json:
        print_json(result)
        return
    doomed = result["deleted" if yes else "would_delete"]
    verb = "deleted" if yes else "would delete"
    typer.echo(f"{result['stored']} blob(s) stored, {result['live']} live, {result['unreferenced']} unreferenced "
               f"({result['young']} younger than 24 h, kept); {verb} {len(doomed)} ({_size(result['bytes'])})"
               + ("" if yes else "; run with --yes to delete"))


@app.command("profile")
def profile(path: Path, as_json: bool = typer.Option(True, "--json/--table")) -> None:
    """Profile a parquet/csv file or folder (JSON by default)."""
    from mloop.data.profile import profile as make_profile

    p = make_profile(path)
    if as_json:
        print_json(p.to_dict())
        return
    from mloop.cli.output import table

    table(f"{path}: {p.rows} rows", ["column", "dtype", "kind", "nulls", "distinct", "mean", "std"],
          [[n, c["dtype"], c["kind"], c["nulls"], c["distinct"], c["mean"], c["std"]] for n, c in p.columns.items()])
