"""Suites in the metadata store: saved as versioned YAML, read back by `name`, `name@N` or `name/N`,
and attached to dataset names so every `mloop.data.add` of that name validates first."""

from __future__ import annotations

import re
from typing import Any

from mloop.errors import InvalidInput, ValidationFailed
from mloop.validation.suite import Suite

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _repos():  # noqa: ANN202
    from mloop.store import get_store
    from mloop.store.validation import AttachmentRepo, SuiteRepo

    store = get_store()
    return SuiteRepo(store), AttachmentRepo(store)


def _check_name(name: Any, what: str = "suite") -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput(f"{what} name {name!r} is not valid: use letters, digits, '.', '_' or '-' "
                           "(starting with a letter or digit, at most 128 characters)")
    return name


def parse_suite_uri(uri: str) -> tuple[str, int | None]:
    """`name`, `name@latest`, `name@N` or `name/N` -> (name, version or None for the latest)."""
    text = uri.removeprefix("suites:/")
    for sep in ("@", "/"):
        if sep in text:
            name, _, ver = text.partition(sep)
            if ver == "latest":
                return _check_name(name), None
            if not ver.isdigit() or int(ver) < 1:
                raise InvalidInput(f"suite version in {uri!r} must be a positive number or 'latest'")
            return _check_name(name), int(ver)
    return _check_name(text), None


def save_suite(suite: Suite, name: str | None = None, *, description: str | None = None) -> Suite:
    """Store `suite` as the next version of `name` (default: `suite.name`); returns the stored suite.

        >>> stored = save_suite(infer_suite(df), "churn")   # doctest: +SKIP
        >>> stored.version                                  # doctest: +SKIP
        1
    """
    name = _check_name(name or suite.name)
    copy = Suite.from_yaml(suite.to_yaml())
    copy.name = name
    copy.description = description or suite.description
    suites, _ = _repos()
    row = suites.save(name, copy.to_yaml(), len(copy), copy.description)
    copy.version = row["version"]
    return copy


def _from_row(row: dict[str, Any]) -> Suite:
    suite = Suite.from_yaml(row["definition"], source=f"suite {row['name']}@{row['version']}")
    suite.name, suite.version = row["name"], row["version"]
    return suite


def get_suite(uri: str) -> Suite:
    """A stored suite by `name` (latest), `name@N` or `name/N`; NotFound names what exists."""
    name, version = parse_suite_uri(uri)
    suites, _ = _repos()
    return _from_row(suites.get(name, version))


def list_suites() -> list[dict[str, Any]]:
    """The newest version of each stored suite: name, version, expectations, created_ms, user."""
    suites, attachments = _repos()
    attached: dict[str, list[str]] = {}
    for a in attachments.list():
        attached.setdefault(parse_suite_uri(a["suite"])[0], []).append(a["dataset"])
    return [{k: v for k, v in r.items() if k not in ("definition", "id")} | {"datasets": attached.get(r["name"], [])}
            for r in suites.latest()]


def suite_versions(name: str) -> list[dict[str, Any]]:
    suites, _ = _repos()
    return [{k: v for k, v in r.items() if k not in ("definition", "id")} for r in suites.versions(_check_name(name))]


def attach(suite_name: str, dataset_name: str) -> dict[str, Any]:
    """Validate every future `add` of `dataset_name` with the suite (`name` follows its latest
    version; `name@N` pins one). The suite must exist."""
    _check_name(dataset_name, "dataset")
    get_suite(suite_name)  # NotFound if it does not exist
    _, attachments = _repos()
    return attachments.attach(dataset_name, suite_name.removeprefix("suites:/"))


def detach(dataset_name: str) -> bool:
    _, attachments = _repos()
    return attachments.detach(_check_name(dataset_name, "dataset"))


def attached_suite(dataset_name: str) -> Suite | None:
    """The suite attached to `dataset_name`, or None."""
    row = _attachment(dataset_name)
    return None if row is None else get_suite(row["suite"])


def _attachment(dataset_name: str) -> dict | None:
    # A CLI `data add` asks this of every add: one row, through the stdlib driver when it applies.
    from mloop.config import get_settings
    from mloop.store import quick

    conn = quick.connect(get_settings().tracking_uri)
    if conn is None:
        return _repos()[1].get(dataset_name)
    try:
        return quick.one_row(conn, "SELECT * FROM validation_attachments WHERE dataset = ?", dataset_name)
    finally:
        conn.close()


def check_dataset(staged: Any) -> None:
    """The check provider registered with `mloop.data`: validate a staged version against the suite
    attached to its name; raise ValidationFailed on an error-severity failure."""
    suite = attached_suite(staged.name)
    if suite is None:
        return
    result = suite.validate(_data_of(staged))
    if not result.ok:
        err = ValidationFailed(f"dataset {staged.name!r} breaks suite {result.suite}: {result.summary()}; "
                               "fix the data, or add it anyway with --force / force=True")
        err.result = result  # type: ignore[attr-defined]
        raise err


def _data_of(staged: Any) -> Any:
    """What to scan: the staged version itself (its parquet/csv files are streamed by DuckDB, so a
    large version is never loaded whole); anything else as an arrow table."""
    if getattr(staged, "format", None) in ("parquet", "csv"):
        return staged
    return staged.to_arrow()
