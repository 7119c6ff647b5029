"""Dataset versions: `add` a file, folder or table; `get`/`use` one by URI; list, log, delete.

A version's content is one directory manifest (relative path, blake3 digest, size) whose digest
identifies it; a single file is a manifest of one entry, a table one `data.parquet` written with
fixed settings (equal tables, equal digests). Versions of a name are numbered by the store.

    >>> dv = mloop.data.add("data/train.parquet", name="churn-train")   # doctest: +SKIP
    >>> mloop.data.get("churn-train@latest").to_pandas()                # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop._faults import crash_point
from mloop.config import get_settings, project_root
from mloop.data import ingest
from mloop.data.checks import run_checks
from mloop.data.hashcache import HashCache
from mloop.data.profile import Profile, table_files
from mloop.errors import InvalidInput, NotFound
from mloop.store.data_quick import OWNER_KIND

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from mloop.artifacts.manifest import Entry
    from mloop.store.data import DatasetVersionRepo

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
TABLE_FILE = "data.parquet"
# Fixed parquet writer settings: equal tables give equal bytes, hence equal digests.
PARQUET_SETTINGS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True,
                    "write_statistics": True, "version": "2.6", "data_page_version": "1.0",
                    "row_group_size": 1 << 20}
# -- names and URIs -------------------------------------------------------------------------


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(
            f"invalid dataset name {name!r}: use letters, digits, '.', '_' or '-', starting with a letter "
            "or digit, at most 128 characters"
        )
    return name


def parse_uri(uri: str) -> tuple[str, str, str | int | None]:
    """`(name, kind, value)` for `name`, `name/N`, `name@N`, `name@latest`, `name@sha:<hex>`."""
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"not a dataset URI: {uri!r}")
    text = uri[len("datasets:/"):] if uri.startswith("datasets:/") else uri
    text = text.lstrip("/")
    if "@" in text:
        name, sel = text.split("@", 1)
    elif "/" in text:
        name, sel = text.rsplit("/", 1)
        if not sel.isdigit():
            raise InvalidInput(f"not a dataset URI: {uri!r} (expected NAME/N, NAME@N, NAME@latest or NAME@sha:HEX)")
    else:
        name, sel = text, "latest"
    check_name(name)
    if sel.isdigit():
        return name, "version", int(sel)
    if sel == "latest":
        return name, "latest", None
    if sel.startswith("sha:"):
        hexpart = sel[4:].lower()
        if len(hexpart) < 8 or not re.fullmatch(r"[0-9a-f]+", hexpart):
            raise InvalidInput(f"digest prefix in {uri!r} must be at least 8 hex digits")
        return name, "sha", hexpart
    raise NotFound(f"dataset {name!r} has no alias {sel!r}: dataset versions are named by number "
                   f"({name}@N), latest ({name}@latest) or digest ({name}@sha:HEX)")


# -- the version object ---------------------------------------------------------------------

class DatasetVersion:
    """One version of a dataset: `name, version, digest, files, rows, schema, profile, created_at,
    path, uri`, `to_pandas()`, `to_arrow()`. `created` is False when `add` found identical content."""

    def __init__(self, record: dict, *, staged_path: Path | None = None,
                 entries: list[Entry] | Callable[[], list[Entry]] | None = None,
                 profile: Profile | None = None, created: bool = True) -> None:
        self._record = record
        self._staged_path = staged_path
        self._entries = entries
        self._profile = profile
        self.created = created

    name = property(lambda self: self._record["name"])
    version = property(lambda self: self._record.get("version"))
    digest = property(lambda self: self._record["digest"])
    is_dir = property(lambda self: bool(self._record["is_dir"]))
    format = property(lambda self: self._record["format"])
    size = property(lambda self: self._record["size"])
    file_count = property(lambda self: self._record["file_count"])
    rows = property(lambda self: self._record.get("rows"))
    schema = property(lambda self: self._record.get("schema"))
    message = property(lambda self: self._record.get("message"))
    source = property(lambda self: self._record.get("source"))
    created_at = property(lambda self: self._record.get("created_ms"))
    user = property(lambda self: self._record.get("user"))
    deleted = property(lambda self: self._record.get("lifecycle_stage") == "deleted")
    staged = property(lambda self: self._record.get("version") is None)

    @property
    def uri(self) -> str:
        return f"datasets:/{self.name}@{self.version}"

    @property
    def lineage_id(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def files(self) -> list[Entry]:
        """The manifest entries (relative path, digest, size), sorted by path."""
        if callable(self._entries):  # built on first use (a CLI add never needs 10,000 of them)
            self._entries = self._entries()
        if self._entries is None:
            from mloop.artifacts.blobs import get_blob_store

            self._entries = get_blob_store().read_manifest(self.digest)
        return self._entries

    @property
    def profile(self) -> Profile | None:
        if self._profile is None and self._record.get("profile") is not None:
            record = self._record["profile"]
            digest = record.get("sample", {}).get("digest")
            self._profile = Profile.from_dict(record, sample_loader=(lambda: _read_parquet_blob(digest))
                                              if digest else None)
        return self._profile

    @property
    def path(self) -> Path:
        """A local path holding the data (the source while staged; else materialised in the cache)."""
        if self._staged_path is not None:
            return self._staged_path
        from mloop.data.checkout import materialise

        return materialise(self)

    def to_arrow(self) -> pa.Table:
        """The table (parquet or csv files; a folder of them is one table)."""
        if self.format not in ("parquet", "csv"):
            raise InvalidInput(f"dataset {self.uri} holds files, not a table (format {self.format!r}); use .path")
        import pyarrow.dataset as ds

        path = self.path
        files = table_files(path)
        if not files:
            raise InvalidInput(f"{path} holds no parquet or csv files")
        return ds.dataset([str(f) for f in files], format="csv" if self.format == "csv" else "parquet").to_table()

    def to_pandas(self) -> pd.DataFrame:
        return self.to_arrow().to_pandas()

    def to_dict(self) -> dict:
        keys = ("name", "version", "digest", "is_dir", "format", "file_count", "size", "rows", "schema",
                "message", "source", "created_ms", "user", "lifecycle_stage", "forced")
        out = {k: self._record.get(k) for k in keys}
        out["uri"] = self.uri
        out["is_dir"] = bool(out["is_dir"])
        return out

    def __repr__(self) -> str:
        return f"DatasetVersion({self.name}@{self.version}, {self.digest[:19]}, files={self.file_count})"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in self.to_dict().items() if k != "schema")
        return f"<table>{rows}</table>"


def _read_parquet_blob(digest: str) -> pa.Table:
    import io

    import pyarrow.parquet as pq

    from mloop.artifacts.blobs import get_blob_store

    return pq.read_table(io.BytesIO(get_blob_store().get(digest)))


def parquet_bytes(table: pa.Table) -> bytes:
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, **PARQUET_SETTINGS)
    return buf.getvalue()


# -- add ------------------------------------------------------------------------------------

def add(source: Any, name: str, message: str | None = None,
        check: Callable[[DatasetVersion], None] | None = None, force: bool = False,
        pointer: bool = True) -> DatasetVersion:
    """Version a file, a folder or a table (pandas, polars, pyarrow) as the next version of `name`.

    Identical content to the latest version returns that version (`created` False). `check` and
    every registered check provider see the staged version first; a raised error refuses it unless
    `force`. Inside the project, a `PATH.mloop` pointer and a `.gitignore` entry are written.

        >>> mloop.data.add("data/train.parquet", name="churn-train", message="March export")  # doctest: +SKIP
    """
    check_name(name)
    settings = get_settings()
    staging: Path | None = None
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser().absolute()
        table_like = None
    else:
        from mloop.data.profile import as_arrow

        table_like = as_arrow(source)
        staging = settings.home / "cache" / "staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        path = staging / TABLE_FILE
        path.write_bytes(parquet_bytes(table_like))
    try:
        return _add(path, name, message, check, force, table_like, pointer and table_like is None)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _add(path: Path, name: str, message: str | None, check: Callable | None, force: bool,
         table: pa.Table | None, write_pointer: bool) -> DatasetVersion:
    is_dir, files = ingest.scan(path)
    if is_dir and not files:
        raise InvalidInput(f"{path} is an empty folder; there is nothing to version")
    fmt = "parquet" if table is not None else ingest.table_format(files)
    profile = None
    if fmt != "files":
        from mloop.data.profile import profile as make_profile

        profile = make_profile(table if table is not None else path)
    from mloop.data.checkout import local_blob_root

    sample = parquet_bytes(profile.sample_table()) if profile is not None else None

    def blobs_of(digests: list[str]) -> list[bytes]:
        return [ingest.encode_manifest(files, digests)] + ([sample] if sample is not None else [])

    with HashCache.open() as cache:
        digests, extra = ingest.store_files(files, cache, local_blob_root(), blobs_of)
        if is_dir:  # `status` then knows this folder from its stats alone
            cache.record_tree(str(path), ingest.tree_signature(files)[0], extra[0])
    crash_point("data.add.blobs_written")

    def entries() -> list[Entry]:
        return ingest.manifest_entries(files, digests)

    manifest = extra[0]
    blobs = list(extra)
    if profile is not None:
        profile._data["sample"]["digest"] = extra[1]
    with _Rows() as rows:
        latest = rows.latest(name)
        if latest is not None and latest["digest"] == manifest and bool(latest["is_dir"]) == is_dir:
            dv = DatasetVersion(latest, entries=entries, created=False)
            log.info("dataset %s@%s already has this content (%s); no new version", name, latest["version"], manifest)
            if write_pointer:
                _write_pointer(path, dv)
            return dv
        record = {
            "name": name,
            "digest": manifest,
            "is_dir": is_dir,
            "format": fmt,
            "file_count": len(files),
            "size": sum(f.st.st_size for f in files),
            "rows": profile.rows if profile else None,
            "schema": profile.schema if profile else None,
            "profile": profile.to_dict() if profile else None,
            "source": None if table is not None else _source_text(path),
            "message": message,
            "forced": False,
        }
        staged = DatasetVersion({**record, "version": None}, staged_path=path, entries=entries, profile=profile)
        refusals = run_checks(staged, check, force=force)
        if refusals:
            record["forced"] = True
        crash_point("data.add.before_commit")

        def before_commit(conn: Any, row: dict) -> None:
            crash_point("data.add.in_transaction")

        row = rows.insert(record, blobs, before_commit)
        dv = DatasetVersion(row, entries=entries, profile=profile)
        log.info("dataset %s@%s: %d file(s), %s", name, row["version"], len(files), manifest)
        if write_pointer:
            _write_pointer(path, dv)
        return dv


class _Rows:
    """Where `add` reads the latest row and inserts the next: store/quick.py's stdlib connection when it
    applies (a CLI add on SQLite never imports SQLAlchemy), else the repository."""

    def __init__(self) -> None:
        from mloop.store.quick import connect

        self.quick = connect(get_settings().tracking_uri)

    def __enter__(self) -> _Rows:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.quick is not None:
            self.quick.close()

    def latest(self, name: str) -> dict | None:
        if self.quick is None:
            return _repo().latest(name)
        from mloop.store import data_quick

        return data_quick.latest(self.quick, name)

    def insert(self, record: dict, blobs: list[str], before_commit: Callable) -> dict:
        if self.quick is None:
            return _repo().insert(record, blobs, before_commit=before_commit)
        from mloop.store import data_quick

        return data_quick.insert(self.quick, record, blobs, before_commit=before_commit)


def _repo() -> DatasetVersionRepo:
    from mloop.store.data import DatasetVersionRepo
    from mloop.store.db import get_store

    return DatasetVersionRepo(get_store())


def _source_text(path: Path) -> str:
    root = project_root()
    if root is not None:
        try:
            return path.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _write_pointer(path: Path, dv: DatasetVersion) -> None:
    from mloop.data.pointers import write_pointer

    write_pointer(path, dv)


# -- reading and lineage --------------------------------------------------------------------

def resolve(uri: str | DatasetVersion, include_deleted: bool = False) -> DatasetVersion:
    """The version a URI names (no lineage edge)."""
    if isinstance(uri, DatasetVersion):
        return uri
    name, kind, value = parse_uri(str(uri))
    repo = _repo()
    if kind == "version":
        row = repo.find(name, int(value))  # type: ignore[arg-type]
        if row is None or (row["lifecycle_stage"] == "deleted" and not include_deleted):
            _not_found(repo, name, f"version {value}", deleted=row is not None)
    elif kind == "latest":
        row = repo.latest(name)
        if row is None:
            _not_found(repo, name, "versions")
    else:
        rows = repo.by_digest_prefix(name, f"blake3:{value}")
        if not include_deleted:
            rows = [r for r in rows if r["lifecycle_stage"] == "active"]
        if not rows:
            _not_found(repo, name, f"version with digest sha:{value}")
        if len({r["digest"] for r in rows}) > 1:
            raise InvalidInput(f"digest prefix sha:{value} matches several versions of {name!r}; give more digits")
        row = rows[-1]
    return DatasetVersion(row, created=False)


def _not_found(repo: DatasetVersionRepo, name: str, what: str, deleted: bool = False) -> None:
    if deleted:
        raise NotFound(f"dataset {name!r} {what} is deleted; restore it with 'mloop data restore {name}@{what[8:]}'")
    versions = [r["version"] for r in repo.versions(name)]
    if not versions:
        raise NotFound(f"no dataset named {name!r}; add one with 'mloop data add PATH --name {name}'")
    raise NotFound(f"dataset {name!r} has no {what} (versions: {', '.join(map(str, sorted(versions)))})")


def get(uri: str) -> DatasetVersion:
    """The dataset version a URI names; inside an active run this records an `input` lineage edge."""
    return use(uri)


def use(uri: str | DatasetVersion, run: Any = None) -> DatasetVersion:
    """`get` and record that `run` (default: the active run) read this version (`input` edge)."""
    dv = resolve(uri)
    if run is None:
        from mloop.tracking.fluent import active_run

        run = active_run()
    if run is not None:
        run_id = run if isinstance(run, str) else run.id
        from mloop.store.db import get_store
        from mloop.store.lineage import LineageRepo

        LineageRepo(get_store()).add((OWNER_KIND, dv.lineage_id), "input", ("run", run_id))
    return dv


def resolve_entity(rest: str) -> tuple[str, str]:
    """`datasets:/…` -> `("dataset_version", "name/N")` for lineage walks (tracking.lineage finds it)."""
    dv = resolve("datasets:/" + rest, include_deleted=True)
    return OWNER_KIND, dv.lineage_id


# -- catalogue ------------------------------------------------------------------------------

def list_datasets() -> list[dict]:
    """One summary per dataset name: number of versions, latest version, last update (ms)."""
    return _repo().names()


def log_versions(name: str, include_deleted: bool = False) -> list[DatasetVersion]:
    """Every version of `name`, newest first."""
    check_name(name)
    rows = _repo().versions(name, include_deleted=include_deleted)
    if not rows:
        raise NotFound(f"no dataset named {name!r}; add one with 'mloop data add PATH --name {name}'")
    return [DatasetVersion(r, created=False) for r in rows]


def delete(uri: str) -> DatasetVersion:
    """Soft-delete a version (it stays stored; `restore` brings it back)."""
    dv = resolve(uri)
    _repo().set_stage(dv.name, dv.version, "deleted")
    return resolve(f"{dv.name}/{dv.version}", include_deleted=True)


def restore(uri: str) -> DatasetVersion:
    """Undo `delete`."""
    dv = resolve(uri, include_deleted=True)
    _repo().set_stage(dv.name, dv.version, "active")
    return resolve(f"{dv.name}/{dv.version}")
