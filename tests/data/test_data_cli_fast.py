"""The typer-free `mloop data add/status` path (cli/data_fast.py) against the typer app; status exit
codes and its imports; the tree signature and its racy-mtime rule; checkout moving the pointer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mloop
from mloop.cli.data_fast import parse_command
from mloop.data import ingest
from mloop.data.hashcache import HashCache
from support import invoke_cli, run_cli


def _tree(root: Path, n: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        p = root / f"part{i % 2}" / f"f{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes(int(rng.integers(1, 3000))))
    return root


def _age(root: Path, seconds: float = 3600) -> None:
    past = time.time() - seconds
    for p in [root, *root.rglob("*")]:
        os.utime(p, (past, past))


def _typer(args: list[str], home: Path, monkeypatch) -> object:
    """`mloop ARGS` through the typer app, in this process, with its own MLOOP_HOME."""
    with monkeypatch.context() as m:
        m.setenv("MLOOP_HOME", str(home))
        mloop.config.reset()
        try:
            return invoke_cli(*args)
        finally:
            m.undo()
            mloop.config.reset()


def _fast(args: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess:
    """`mloop ARGS` as the console script runs it (the fast path when the line is plain)."""
    return run_cli(*args, env={"MLOOP_HOME": str(home)}, cwd=cwd)


def _same(fast, slow) -> None:
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


PLAIN = [["add", "tree", "--name", "t"], ["add", "tree", "-n", "t", "-m", "first cut", "--force"],
         ["add", "--name=t", "tree", "--json"], ["status"], ["status", "tree", "--json"]]
FALLBACK = [["add", "tree"], ["add", "--help"], ["status", "--help"], ["add", "tree", "--name"],
            ["add", "tree", "--name", "a", "--name", "b"], ["add", "tree", "-n=t"], ["status", "a", "b"],
            ["status", "--bogus"], ["add", "tree", "--name", "--json"], ["list"], []]


@pytest.mark.parametrize("args", PLAIN)
def test_plain_lines_take_the_fast_path(args):
    assert parse_command(args) is not None


@pytest.mark.parametrize("args", FALLBACK)
def test_anything_else_goes_to_typer(args):
    assert parse_command(args) is None


def test_fast_and_typer_paths_print_and_exit_alike(tmp_path, monkeypatch):
    _tree(tmp_path / "tree")
    _age(tmp_path / "tree")
    fast_home, typer_home = tmp_path / "home-fast", tmp_path / "home-typer"
    steps = [
        ["data", "status"],  # no pointers yet
        ["data", "add", "tree", "--name", "t", "-m", "first"],  # created
        ["data", "add", "tree", "--name=t", "--json"],  # unchanged, JSON
        ["data", "status"],
        ["data", "status", "tree", "--json"],
        ["data", "add", "missing", "--name", "t"],  # NotFound: exit 2, one line naming the path
        ["data", "add", "tree", "--name", "../x"],  # invalid name: exit 2
        ["data", "status", "nowhere"],  # no pointer there: exit 2
        ["data", "add", "tree", "--help"],  # typer's help on both sides
        ["data", "status", "--bogus"],  # typer's usage error on both sides
    ]
    for args in steps:
        # the pointer beside the data is shared: each side sees the other's (identical) pointer
        fast = _fast(args, fast_home, tmp_path)
        slow = _typer(args, typer_home, monkeypatch)
        if "--json" in args and args[1] == "add":
            a, b = json.loads(fast.stdout), json.loads(slow.stdout)
            assert {k: v for k, v in a.items() if k != "created_ms"} == \
                   {k: v for k, v in b.items() if k != "created_ms"}
            assert fast.returncode == slow.returncode == 0
            continue
        if args[1] == "add" and "--help" not in args and fast.returncode == 0:
            assert fast.stdout.startswith("added t@1 (6 file(s), ")
        _same(fast, slow)
    # modified data: exit code 1 on both paths, the same report
    (tmp_path / "tree" / "part0" / "f0.bin").write_bytes(b"changed")
    (tmp_path / "tree" / "new.txt").write_text("n")
    fast = _fast(["data", "status"], fast_home, tmp_path)
    slow = _typer(["data", "status"], typer_home, monkeypatch)
    _same(fast, slow)
    assert fast.returncode == 1 and "modified: part0/f0.bin" in fast.stdout and "added: new.txt" in fast.stdout


def test_status_exit_codes(tmp_path):
    _tree(tmp_path / "d")
    assert run_cli("data", "add", "d", "--name", "d", cwd=tmp_path).returncode == 0
    ok = run_cli("data", "status", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.split()[0] == "unchanged"
    shutil.rmtree(tmp_path / "d")
    gone = run_cli("data", "status", "--json", cwd=tmp_path)
    assert gone.returncode == 1 and json.loads(gone.stdout)[0]["state"] == "missing"
    empty = tmp_path / "empty"
    empty.mkdir()
    none = run_cli("data", "status", "empty", cwd=tmp_path)
    assert none.returncode == 0 and none.stdout == "no pointers (.mloop files) found\n"


def test_status_imports_no_database_typer_or_blob_store(tmp_path):
    _tree(tmp_path / "d")
    _age(tmp_path / "d")
    mloop.data.add(tmp_path / "d", name="d")
    dump = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(dump)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            "from mloop.cli import main\nmain(['data', 'status'])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("unchanged")
    loaded = set(json.loads(dump.read_text()))
    heavy = {m for m in loaded if m.split(".")[0] in ("sqlalchemy", "typer", "click", "pydantic", "rich",
                                                       "pyarrow", "pandas", "numpy", "fsspec")}
    mloop_heavy = {m for m in loaded if m.startswith(("mloop.artifacts", "mloop.store", "mloop.tracking"))}
    assert not heavy and not mloop_heavy, sorted(heavy | mloop_heavy)
    assert "mloop.data.status" in loaded


def test_unchanged_folder_is_known_by_its_signature(tmp_path, monkeypatch):
    src = _tree(tmp_path / "d", n=20)
    _age(src)
    mloop.data.add(src, name="d")
    lookups = []
    real = HashCache.lookup
    monkeypatch.setattr(HashCache, "lookup", lambda self, stats: lookups.append(1) or real(self, stats))
    assert mloop.data.status(src)[0]["state"] == "unchanged"
    assert lookups == []  # one tree row, no per-file rows
    os.rename(src / "part0" / "f0.bin", src / "part0" / "g0.bin")  # same inode, size, mtime; new path
    r = mloop.data.status(src)[0]
    assert r["state"] == "modified" and r["added"] == ["part0/g0.bin"] and r["removed"] == ["part0/f0.bin"]
    assert lookups == [1]


def test_fresh_folder_signature_is_not_trusted(tmp_path, monkeypatch):
    src = _tree(tmp_path / "fresh", n=4)  # mtimes = now: within 2 s of the records add makes
    mloop.data.add(src, name="fresh")
    victim = src / "part1" / "f1.bin"
    st = victim.stat()
    victim.write_bytes(bytes(st.st_size))  # same size; then the same mtime: only re-reading catches it
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    reads = []
    real = ingest.read_bytes
    monkeypatch.setattr(ingest, "read_bytes", lambda p, *a: reads.append(p) or real(p, *a))
    r = mloop.data.status(src)[0]
    assert r["state"] == "modified" and r["modified"] == ["part1/f1.bin"]
    assert str(victim) in reads


def test_tree_record_ignores_a_signature_it_did_not_see(tmp_path):
    with HashCache(tmp_path / "h.db") as cache:
        old = time.time_ns() - 10_000_000_000
        cache.record_tree("/x", "sig-a", "blake3:" + "a" * 64)
        assert cache.tree_digest("/x", "sig-a", old) == "blake3:" + "a" * 64
        assert cache.tree_digest("/x", "sig-b", old) is None
        assert cache.tree_digest("/y", "sig-a", old) is None
        assert cache.tree_digest("/x", "sig-a", time.time_ns()) is None  # newest file too recent


def test_signature_changes_with_each_part_of_a_file_identity(tmp_path):
    src = _tree(tmp_path / "s", n=3)
    _, files = ingest.scan(src)
    base, newest = ingest.tree_signature(files)
    assert newest == max(f.st.st_mtime_ns for f in files)
    f = files[0]
    os.utime(f.full, ns=(f.st.st_atime_ns, f.st.st_mtime_ns + 1))
    assert ingest.tree_signature(ingest.scan(src)[1])[0] != base
    assert ingest.tree_signature(files[1:])[0] != base


def test_light_hashing_matches_the_foundation(tmp_path):
    from mloop.artifacts import hashing

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 << 20))
    assert ingest.PREFIX == hashing.PREFIX
    assert ingest.hash_large(str(big)) == hashing.digest_of_file(big)
    assert ingest.hash_bytes(b"abc") == hashing.digest_of_bytes(b"abc")
    grown = tmp_path / "grown.bin"
    grown.write_bytes(b"x" * 100)
    assert ingest.read_bytes(str(grown), 10) == b"x" * 100  # a stale size still reads it all
    assert ingest.read_bytes(str(grown), 100) == b"x" * 100


def test_checkout_of_an_older_version_moves_the_pointer(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / ".mloop").mkdir()
    data = _tree(project / "images", n=4)
    assert run_cli("data", "add", "images", "--name", "images", cwd=project).returncode == 0
    first = {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    (data / "part0" / "f0.bin").write_bytes(b"v2")
    assert run_cli("data", "add", "images", "--name", "images", cwd=project).returncode == 0
    assert "version: 2" in (project / "images.mloop").read_text()
    out = run_cli("data", "checkout", "images@1", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "version: 1" in (project / "images.mloop").read_text()
    assert {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()} == first
    status = run_cli("data", "status", cwd=project)
    assert status.returncode == 0 and "unchanged" in status.stdout and "images@1" in status.stdout
    # a destination elsewhere without a pointer gets none; the project's pointer stays
    assert run_cli("data", "checkout", "images@2", "--dest", str(tmp_path / "elsewhere"), cwd=project).returncode == 0
    assert not (tmp_path / "elsewhere.mloop").exists()
    assert "version: 1" in (project / "images.mloop").read_text()


def test_add_of_a_folder_imports_no_sqlalchemy_and_records_the_same_row(tmp_path):
    """A CLI add on an existing SQLite store goes through store/quick.py; its row, blob refs and the
    next version number are what the repository path gives."""
    from mloop.store import get_store
    from mloop.store.data import DatasetVersionRepo
    from mloop.store.lineage import BlobRefRepo

    _tree(tmp_path / "d", n=70)  # enough small files for a pack
    _age(tmp_path / "d")
    first = mloop.data.add(tmp_path / "d", name="in-process", message="m")  # the repository path
    dump = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(dump)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            "from mloop.cli import main\nmain(['data', 'add', 'd', '--name', 'cli', '-m', 'm'])\n")
    for _ in range(2):  # the second time: unchanged, no new version
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("unchanged: cli@1 already has this content")
    loaded = set(json.loads(dump.read_text()))
    assert not {m for m in loaded if m.split(".")[0] in ("sqlalchemy", "alembic", "typer", "fsspec")}
    repo = DatasetVersionRepo(get_store())
    assert [r["version"] for r in repo.versions("cli")] == [1]
    ours, theirs = repo.find("cli", 1), repo.find("in-process", 1)
    skip = {"id", "name", "created_ms"}
    assert {k: v for k, v in ours.items() if k not in skip} == {k: v for k, v in theirs.items() if k not in skip}
    refs = BlobRefRepo(get_store())
    assert sorted(refs.owners(first.digest)) == [("dataset_version", "cli/1"), ("dataset_version", "in-process/1")]
    # the quick path numbers versions after the repository's
    (tmp_path / "d" / "extra.bin").write_bytes(b"x")
    mloop.data.add(tmp_path / "d", name="cli")
    (tmp_path / "d" / "extra.bin").write_bytes(b"y")
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60).returncode == 0
    assert [r["version"] for r in repo.versions("cli")] == [3, 2, 1]


def test_concurrent_cli_adds_get_distinct_versions(tmp_path):
    mloop.data.add(_tree(tmp_path / "seed", n=2), name="c")  # the store exists: every CLI add is quick
    for i in range(4):
        _tree(tmp_path / f"t{i}", n=3, seed=10 + i)
    procs = [subprocess.Popen([sys.executable, "-m", "mloop", "data", "add", f"t{i}", "--name", "c"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    from mloop.store import get_store
    from mloop.store.data import DatasetVersionRepo

    rows = DatasetVersionRepo(get_store()).versions("c")
    assert sorted(r["version"] for r in rows) == [1, 2, 3, 4, 5]
    assert len({r["digest"] for r in rows}) == 5
