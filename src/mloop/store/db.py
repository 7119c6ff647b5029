"""Opening the metadata store: engines per dialect, write transactions, retries, migrations on open.

SQLite (the default) runs in WAL mode with two engines: reads begin deferred transactions, so they
never block; writes begin `BEGIN IMMEDIATE`, so a writer takes the lock up front instead of failing
half-way. PostgreSQL goes through psycopg 3. `Store.transact(fn)` retries `fn(conn)` on a lock or a
serialisation failure with backoff, so "database is locked" never reaches a user.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from mloop.errors import InvalidInput, ServiceUnavailable, missing

log = logging.getLogger(__name__)
T = TypeVar("T")

_RETRY_SECONDS = 120.0


def _is_retryable(exc: BaseException) -> bool:
    """Lock contention (SQLite busy/locked) or a PostgreSQL serialisation failure or deadlock."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "database is locked" in text or "database table is locked" in text or "database is busy" in text:
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


class Store:
    """A metadata store at one URI: `read()` and `write()` connections, `transact()` with retries."""

    def __init__(self, uri: str, *, migrate: bool = True) -> None:
        self.uri = uri
        self.dialect = _dialect_of(uri)
        self._write = _make_engine(uri, self.dialect, begin="BEGIN IMMEDIATE")
        self._read = _make_engine(uri, self.dialect, begin="BEGIN") if self.dialect == "sqlite" else self._write
        if migrate:
            from mloop.store.migrate import ensure_schema

            try:
                ensure_schema(self)
            except OperationalError as exc:
                _raise_translated(self.uri, exc)

    @property
    def engine(self) -> Engine:
        """The write engine (for tools such as Alembic that need an Engine)."""
        return self._write

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction (deferred on SQLite: it never blocks writers)."""
        try:
            with self._read.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            _raise_translated(self.uri, exc)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in one write transaction, committed on exit (no retry: see `transact`)."""
        with self._write.connect() as conn, conn.begin():
            yield conn

    def transact(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` in one write transaction, retrying with backoff on lock contention.

        `fn` may run more than once, so it must only touch the database. Contention that outlasts
        the retry window becomes ServiceUnavailable; "database is locked" never reaches a caller.
        """
        deadline = time.monotonic() + _RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                with self.write() as conn:
                    return fn(conn)
            except DBAPIError as exc:
                if not _is_retryable(exc):
                    if isinstance(exc, OperationalError):
                        _raise_translated(self.uri, exc)
                    raise
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"metadata store {redact(self.uri)} stayed locked by other writers for "
                        f"{_RETRY_SECONDS:.0f} s; retry, or use PostgreSQL for this many concurrent writers"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)

    def dispose(self) -> None:
        """Close every pooled connection (after fork, or when settings change)."""
        self._write.dispose(close=False)
        if self._read is not self._write:
            self._read.dispose(close=False)


def _raise_translated(uri: str, exc: OperationalError) -> NoReturn:
    """Re-raise a driver error: an unreachable store as ServiceUnavailable, anything else as is."""
    text = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(getattr(exc, "orig", exc)).strip() else ""
    lowered = text.lower()
    if any(word in lowered for word in ("connection", "unable to open", "could not", "timeout", "timed out")):
        raise ServiceUnavailable(f"metadata store {redact(uri)} is unreachable: {text}") from exc
    raise exc


def redact(uri: str) -> str:
    """The URI with any password replaced by ***, for messages and logs."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            creds = creds.split(":", 1)[0] + ":***"
        return f"{scheme}://{creds}@{host}"
    return uri


def _dialect_of(uri: str) -> str:
    if uri.startswith("sqlite"):
        return "sqlite"
    if uri.startswith(("postgresql", "postgres://")):
        return "postgresql"
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(
            f"tracking URI {uri!r} points at an mloop server, which this build does not include yet; "
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )
    raise InvalidInput(f"unsupported tracking URI {uri!r}; use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")


def _make_engine(uri: str, dialect: str, *, begin: str) -> Engine:
    if dialect == "sqlite":
        path = uri.split("///", 1)[1] if "///" in uri else ""
        if path and path != ":memory:":
            folder = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise ServiceUnavailable(f"metadata store {uri} is unreachable: cannot create {folder}: {exc}") from exc
        engine = create_engine(uri, connect_args={"timeout": 30}, pool_size=8, max_overflow=16)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA case_sensitive_like=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # noqa: ANN001
            conn.exec_driver_sql(begin)

        return engine
    for bare in ("postgresql://", "postgres://"):
        if uri.startswith(bare):
            uri = "postgresql+psycopg://" + uri[len(bare) :]
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise missing("psycopg", "postgres", "a PostgreSQL metadata store") from exc
    return create_engine(uri, pool_pre_ping=True, pool_size=8, max_overflow=16)


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def get_store(uri: str | None = None) -> Store:
    """The process-wide store for `uri` (default: the configured tracking URI), opened once."""
    if uri is None:
        from mloop.config import get_settings

        uri = get_settings().tracking_uri
    store = _stores.get(uri)
    if store is None:
        with _stores_lock:
            store = _stores.get(uri)
            if store is None:
                store = _stores[uri] = Store(uri)
    return store


def is_open(uri: str) -> bool:
    """True once this process opened the store at `uri` (its pooled connections are at hand)."""
    return uri in _stores


def _forget_stores() -> None:
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()


def _after_fork_in_child() -> None:
    # Connections inherited from the parent must never be used by the child: drop them unclosed
    # (closing would end the parent's sessions). The lock may have been held by another thread.
    global _stores_lock
    _stores_lock = threading.Lock()
    for store in list(_stores.values()):
        store.dispose()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _register_reset() -> None:
    from mloop.config import on_reset

    on_reset(_forget_stores)


_register_reset()

__all__ = ["Store", "get_store", "is_open", "redact"]
