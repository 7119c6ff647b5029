"""`insert_versioned`: concurrent writers (processes and threads) get distinct, consecutive numbers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from mloop.store.versions import insert_versioned
from support import wait_until

PER_WRITER = 12


def _table(name: str) -> tuple[MetaData, Table]:
    md = MetaData()
    table = Table(name, md, Column("parent", String(40), primary_key=True),
                  Column("version", Integer, primary_key=True), Column("writer", String(40), nullable=False))
    return md, table


@pytest.fixture
def versioned(store):
    md, table = _table(f"test_versions_{uuid.uuid4().hex[:8]}")
    md.create_all(store.engine)
    yield table
    md.drop_all(store.engine)


def _allocate(store, table, parent: str, writer: str) -> int:
    def write(conn, version: int) -> int:
        conn.execute(table.insert(), {"parent": parent, "version": version, "writer": writer})
        return version

    return insert_versioned(store, table, "parent", parent, write)


_WORKER = """
import sys, time, pathlib
from sqlalchemy import Column, Integer, MetaData, String, Table
import mloop.store
from mloop.store.versions import insert_versioned
name, parent, writer, n, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), pathlib.Path(sys.argv[5])
table = Table(name, MetaData(), Column("parent", String(40), primary_key=True),
              Column("version", Integer, primary_key=True), Column("writer", String(40), nullable=False))
store = mloop.store.get_store()
pathlib.Path(str(go) + "." + writer).touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
got = [insert_versioned(store, table, "parent", parent,
                        lambda conn, v: (conn.execute(table.insert(), {"parent": parent, "version": v,
                                                                       "writer": writer}), v)[1])
       for _ in range(n)]
print(" ".join(map(str, got)))
"""


def test_processes_get_distinct_consecutive_versions(store, versioned, tmp_path):
    go = tmp_path / "go"
    writers = [f"p{i}" for i in range(4)]
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, versioned.name, "model", w, str(PER_WRITER), str(go)],
                              env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in writers]
    try:
        wait_until(lambda: all((tmp_path / f"go.{w}").exists() for w in writers), timeout=60, what="writers ready")
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    per_writer = {}
    for w, p, (out, err) in zip(writers, procs, outputs, strict=True):
        assert p.returncode == 0, err
        per_writer[w] = [int(x) for x in out.split()]
        assert per_writer[w] == sorted(per_writer[w]), "a writer saw its versions go backwards"
    with store.read() as conn:
        rows = conn.execute(select(versioned.c.version, versioned.c.writer).where(versioned.c.parent == "model")).all()
    versions = sorted(v for v, _ in rows)
    assert versions == list(range(1, 4 * PER_WRITER + 1))
    assert {w: sorted(v for v, who in rows if who == w) for w in writers} == per_writer


def test_threads_get_distinct_consecutive_versions_per_parent(store, versioned):
    errors: list[BaseException] = []

    def work(writer: str) -> None:
        try:
            for i in range(PER_WRITER):
                _allocate(store, versioned, "a" if i % 2 else "b", writer)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with store.read() as conn:
        rows = conn.execute(select(versioned.c.parent, versioned.c.version)).all()
    for parent in ("a", "b"):
        assert sorted(v for p, v in rows if p == parent) == list(range(1, 2 * PER_WRITER + 1))


def test_a_failing_write_allocates_nothing(store, versioned):
    assert _allocate(store, versioned, "m", "w") == 1

    def boom(conn, version):
        conn.execute(versioned.insert(), {"parent": "m", "version": version, "writer": "x"})
        raise RuntimeError("write failed")

    with pytest.raises(RuntimeError):
        insert_versioned(store, versioned, "parent", "m", boom)
    assert _allocate(store, versioned, "m", "w") == 2


def test_unique_violation_retries_without_the_lock(store, versioned, monkeypatch):
    """Writers that collide on a number (no advisory lock) retry with the next one."""
    import mloop.store.versions as versions

    monkeypatch.setattr(versions, "lock_parent", lambda conn, table, parent: None)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(writer: str) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(6):
                _allocate(store, versioned, "race", writer)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with store.read() as conn:
        versions_ = sorted(conn.execute(select(versioned.c.version)).scalars())
    assert versions_ == list(range(1, 25))
