"""Migrations: one head, the migrated schema equals `metadata`, a fast path without Alembic, and
four processes opening a fresh store at once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from mloop.errors import MloopError
from mloop.store import migrate
from mloop.store.db import Store
from mloop.store.tables import metadata
from support import PG_ADMIN_DSN, PG_PREFIX, wait_until


def _script() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def test_exactly_one_alembic_head_and_our_parser_agrees():
    script = _script()
    assert len(script.get_heads()) == 1, f"migrations have several heads: {script.get_heads()}"
    assert migrate.heads() == tuple(script.get_heads())
    assert migrate.head() == script.get_current_head()
    files = list((migrate.MIGRATIONS / "versions").glob("*.py"))
    assert len(list(script.walk_revisions())) == len(files), "a migration is not on the chain to head"


def test_two_heads_are_refused_and_merges_are_understood(tmp_path, monkeypatch):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    (versions / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path)
    migrate._graph.cache_clear()
    try:
        assert migrate.heads() == ("b", "c")
        with pytest.raises(MloopError, match="2 heads"):
            migrate.head()
        (versions / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
        migrate._graph.cache_clear()
        assert migrate.heads() == ("d",)
    finally:
        monkeypatch.undo()
        migrate._graph.cache_clear()


def test_migrated_schema_equals_metadata(store):
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert diffs == [], f"migrations and metadata differ on {store.dialect}: {diffs}"
    assert revision == migrate.head()


def test_a_store_from_a_newer_mloop_is_refused(store):
    store.transact(lambda conn: conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'")))
    try:
        with pytest.raises(MloopError, match="9999_future"):
            Store(store.uri)
    finally:
        store.transact(lambda conn: conn.execute(text("UPDATE alembic_version SET version_num = :h"),
                                                 {"h": migrate.head()}))


_OPEN_TWICE = """
import sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
statements = []
event.listen(Engine, "before_cursor_execute", lambda c, cur, stmt, *a: statements.append(stmt))
import mloop.store
mloop.store.get_store()
selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
print("alembic" in sys.modules, len(selects), selects[0] if selects else "")
"""


def test_fast_path_reads_one_row_and_never_imports_alembic(tracking_uri):
    first = subprocess.run([sys.executable, "-c", _OPEN_TWICE], capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-c", _OPEN_TWICE], capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    imported, selects, statement = second.stdout.split(maxsplit=2)
    assert imported == "False", "opening an up-to-date store imported alembic"
    assert selects == "1" and "alembic_version" in statement, second.stdout


_OPEN_AT_GO = """
import os, sys, time, pathlib
import mloop.store
from sqlalchemy import text
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
store = mloop.store.get_store()
with store.read() as conn:
    print(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
"""


@pytest.fixture
def fresh_uri(tracking_uri, tmp_path):
    """A store URI nobody has opened yet: a new SQLite file, or a new PostgreSQL database."""
    if tracking_uri.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh' / 'mloop.db'}"
        return
    import psycopg

    name = f"{PG_PREFIX}{os.getpid()}_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield tracking_uri.rsplit("/", 1)[0] + "/" + name
    import mloop.config

    mloop.config.reset()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_four_processes_open_a_fresh_store_at_once(fresh_uri, tmp_path):
    env = {**os.environ, "MLOOP_TRACKING_URI": fresh_uri}
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN_AT_GO, str(tmp_path / f"ready{i}"), str(go)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    try:
        wait_until(lambda: all((tmp_path / f"ready{i}").exists() for i in range(4)), timeout=60,
                   what="four processes ready")
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == migrate.head()
    store = Store(fresh_uri)
    try:
        with store.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            if store.dialect == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        store.dispose()
