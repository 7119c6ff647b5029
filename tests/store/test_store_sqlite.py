"""SQLite specifics (WAL, busy timeout, BEGIN IMMEDIATE writes, deferred reads), retries on lock
contention, and engines that a forked child does not share with its parent."""

from __future__ import annotations

import os
import sqlite3

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from mloop.errors import ServiceUnavailable
from mloop.store import db
from mloop.store.db import Store


@pytest.fixture
def sqlite_store(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'lite.db'}")
    yield store
    store.dispose()


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cur, stmt, *a: seen.append(stmt.strip()))
    return seen


def test_every_connection_is_wal_with_a_30s_busy_timeout(sqlite_store):
    for engine in (sqlite_store._read, sqlite_store._write):
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_writes_begin_immediate_and_reads_begin_deferred(sqlite_store):
    writes, reads = _statements(sqlite_store._write), _statements(sqlite_store._read)
    sqlite_store.transact(lambda conn: conn.execute(text("SELECT 1")))
    with sqlite_store.read() as conn:
        conn.execute(text("SELECT 2"))
    assert writes[:2] == ["BEGIN IMMEDIATE", "SELECT 1"]
    assert reads[:2] == ["BEGIN", "SELECT 2"]


def test_a_read_does_not_wait_for_a_writer_holding_the_lock(sqlite_store, tmp_path):
    other = sqlite3.connect(tmp_path / "lite.db", isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE experiments SET updated_ms = updated_ms")  # holds the write lock
        with sqlite_store.read() as conn:  # a deferred WAL reader does not need that lock
            assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
        raw = sqlite3.connect(tmp_path / "lite.db", isolation_level=None, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # while a second writer would wait
            raw.execute("BEGIN IMMEDIATE")
        raw.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_transact_retries_locked_with_backoff_and_nothing_else(sqlite_store, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(db.time, "sleep", sleeps.append)
    calls = []

    def flaky(conn):
        calls.append(1)
        if len(calls) < 4:
            raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
        return conn.execute(text("SELECT 42")).scalar()

    assert sqlite_store.transact(flaky) == 42
    assert len(calls) == 4 and len(sleeps) == 3
    assert sleeps[-1] > sleeps[0], "backoff should grow"

    def broken(conn):
        calls.append(1)
        raise IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    calls.clear()
    with pytest.raises(IntegrityError):
        sqlite_store.transact(broken)
    assert len(calls) == 1


def test_postgres_serialisation_failures_are_retryable():
    class Orig(Exception):
        sqlstate = "40001"

    assert db._is_retryable(OperationalError("x", {}, Orig("could not serialize access")))
    assert not db._is_retryable(OperationalError("x", {}, Exception("syntax error")))


def test_fork_resets_the_pooled_connections(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'fork.db'}"
    store = db.get_store(uri)
    with store.read() as conn:
        conn.execute(text("SELECT 1"))
    parent_pool = store._read.pool
    pid = os.fork()
    if pid == 0:  # child: the inherited pool is replaced, and the store still works
        code = 1
        try:
            with store.read() as conn:
                ok = conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0
            code = 0 if ok and store._read.pool is not parent_pool else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._read.pool is parent_pool


@pytest.mark.parametrize("uri", [
    "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere",
    "sqlite:////dev/null/cannot/mloop.db",
])
def test_an_unreachable_store_is_service_unavailable_without_the_password(uri):
    with pytest.raises(ServiceUnavailable) as info:
        Store(uri)
    assert "unreachable" in str(info.value) and "hunter2" not in str(info.value)


def test_lock_contention_beyond_the_retry_window_is_service_unavailable(sqlite_store, monkeypatch):
    monkeypatch.setattr(db, "_RETRY_SECONDS", 0.0)

    def locked(conn):
        raise OperationalError("UPDATE ...", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(ServiceUnavailable, match="stayed locked"):
        sqlite_store.transact(locked)
