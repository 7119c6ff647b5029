"""store/quick.py: the stdlib SQLite connection opens only a store file at head, and its dataset rows
read back exactly as the repository's."""

from __future__ import annotations

import sqlite3

import pytest

from mloop.config import get_settings
from mloop.store import data_quick, get_store, quick
from mloop.store.data import DatasetVersionRepo

RECORD = {"digest": "blake3:" + "a" * 64, "is_dir": True, "format": "files", "file_count": 2, "size": 10,
          "rows": None, "schema": [{"name": "x", "dtype": "int64"}], "profile": {"rows": 3}, "source": "d",
          "message": "hi", "forced": False}


@pytest.fixture
def sqlite_uri():
    uri = get_settings().tracking_uri
    if not uri.startswith("sqlite:///"):
        pytest.skip("the quick path is SQLite's")
    get_store()  # created and migrated to head
    return uri


def test_rows_written_either_way_read_back_the_same(sqlite_uri):
    repo = DatasetVersionRepo(get_store())
    repo.insert({**RECORD, "name": "slow"}, [RECORD["digest"]])
    conn = quick.open_sqlite(sqlite_uri)
    assert conn is not None
    try:
        row = data_quick.insert(conn, {**RECORD, "name": "fast"}, [RECORD["digest"], RECORD["digest"]])
        assert row["version"] == 1
        assert data_quick.insert(conn, {**RECORD, "name": "fast", "forced": True}, [])["version"] == 2
        latest = data_quick.latest(conn, "fast")
    finally:
        conn.close()
    skip = {"id", "name", "created_ms"}
    fast, slow = repo.find("fast", 1), repo.find("slow", 1)
    assert {k: v for k, v in fast.items() if k not in skip} == {k: v for k, v in slow.items() if k not in skip}
    assert latest == repo.latest("fast") and latest["forced"] is True and latest["is_dir"] is True
    from mloop.store.lineage import BlobRefRepo

    assert sorted(BlobRefRepo(get_store()).owners(RECORD["digest"])) == [
        ("dataset_version", "fast/1"), ("dataset_version", "slow/1")]


def test_only_an_existing_store_at_head_is_opened(sqlite_uri, tmp_path):
    missing = tmp_path / "nothing.db"
    assert quick.open_sqlite(f"sqlite:///{missing}") is None and not missing.exists()  # never created
    assert quick.open_sqlite("postgresql+psycopg://postgres@127.0.0.1/test") is None
    assert quick.open_sqlite(sqlite_uri + "?mode=ro") is None
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as c:
        c.execute("CREATE TABLE alembic_version (version_num TEXT)")
        c.execute("INSERT INTO alembic_version VALUES ('0001')")
    assert quick.open_sqlite(f"sqlite:///{old}") is None  # behind head: the regular path migrates it
    assert quick.connect(sqlite_uri) is None  # this process has SQLAlchemy loaded: its engine is cheaper


def test_a_failed_write_rolls_back(sqlite_uri):
    conn = quick.open_sqlite(sqlite_uri)
    try:
        def boom(c, row):  # noqa: ANN001
            raise RuntimeError("killed mid-transaction")

        with pytest.raises(RuntimeError):
            data_quick.insert(conn, {**RECORD, "name": "gone"}, [RECORD["digest"]], before_commit=boom)
        assert data_quick.latest(conn, "gone") is None
    finally:
        conn.close()
    assert DatasetVersionRepo(get_store()).latest("gone") is None
