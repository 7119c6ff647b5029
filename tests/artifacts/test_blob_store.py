"""The content-addressed blob store, over a local folder and over S3 (moto's server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import blake3
import pytest

from mloop.artifacts import get_blob_store
from mloop.artifacts.hashing import digest_of_bytes
from mloop.errors import Conflict, CorruptBlob, InvalidInput, NotFound


def _blob_objects(blobs) -> list[str]:
    """Every object under the store's blobs/ folder, read straight from the filesystem."""
    try:
        return sorted(blobs.fs.find(f"{blobs.root}/blobs"))
    except FileNotFoundError:
        return []


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def blobs(artifact_uri):
    return get_blob_store()


@pytest.fixture
def sample_dir(tmp_path):
    root = tmp_path / "src_dir"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(3000))
    (root / "sub" / "deeper" / "c.txt").write_bytes(b"alpha\n")  # same content as a.txt
    (root / "empty.txt").write_bytes(b"")
    return root


def test_put_bytes_file_and_dir_return_blake3_digests(blobs, tmp_path, sample_dir):
    data = b"hello blobs"
    assert blobs.put(data) == "blake3:" + blake3.blake3(data).hexdigest()
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(10_000))
    assert blobs.put(f) == "blake3:" + blake3.blake3(f.read_bytes()).hexdigest()
    d = blobs.put(sample_dir)
    entries = blobs.read_manifest(d)
    assert [e.path for e in entries] == ["a.txt", "empty.txt", "sub/b.bin", "sub/deeper/c.txt"]
    for e in entries:
        content = (sample_dir / e.path).read_bytes()
        assert e.digest == digest_of_bytes(content) and e.size == len(content)
    # the manifest is JSON lines sorted by path
    lines = blobs.get(d).decode().splitlines()
    assert [json.loads(line)["path"] for line in lines] == sorted(e.path for e in entries)


def test_identical_content_is_stored_once(blobs, tmp_path, sample_dir):
    blobs.put(b"same")
    blobs.put(b"same")
    f = tmp_path / "same.txt"
    f.write_bytes(b"same")
    assert blobs.put(f) == blobs.put(b"same")
    assert len(_blob_objects(blobs)) == 1
    first = blobs.put(sample_dir)
    # a.txt and c.txt share content: 3 distinct files + the manifest
    assert len(_blob_objects(blobs)) == 1 + 3 + 1
    assert blobs.put(sample_dir) == first
    assert len(_blob_objects(blobs)) == 5
    assert sorted(blobs.iter_blobs()) == sorted(
        {blobs.put(b"same"), first, *(e.digest for e in blobs.read_manifest(first))})


def test_round_trip_byte_for_byte(blobs, tmp_path, sample_dir):
    payload = os.urandom(3 * (1 << 20) + 17)  # several read chunks
    f = tmp_path / "big.bin"
    f.write_bytes(payload)
    digest = blobs.put(f)
    assert blobs.get(digest) == payload
    with blobs.open(digest) as fh:
        assert fh.read() == payload
    out = blobs.copy_to(digest, tmp_path / "out" / "copy.bin")
    assert out.read_bytes() == payload
    assert blobs.exists(digest) and blobs.verify(digest)

    d = blobs.put(sample_dir)
    copied = blobs.copy_to(d, tmp_path / "restored", is_dir=True)
    assert _tree(copied) == _tree(sample_dir)
    # copying into an existing folder adds the files and keeps what was there
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    blobs.copy_to(d, existing, is_dir=True)
    assert _tree(existing) == {**_tree(sample_dir), "keep.txt": b"mine"}


def test_exists_and_unknown_digest(blobs):
    missing = digest_of_bytes(b"never stored")
    assert not blobs.exists(missing)
    with pytest.raises(NotFound, match=missing):
        blobs.get(missing)
    assert blobs.exists(blobs.put(b"stored"))
    with pytest.raises(InvalidInput, match="not a blob digest"):
        blobs.exists("blake3:../../etc/passwd")
    with pytest.raises(InvalidInput):
        blobs.get("sha256:" + "0" * 64)


def test_empty_dir_round_trips(blobs, tmp_path):
    (tmp_path / "nothing").mkdir()
    d = blobs.put(tmp_path / "nothing")
    assert blobs.read_manifest(d) == []
    assert blobs.copy_to(d, tmp_path / "nothing-back", is_dir=True).is_dir()


def test_put_named_is_write_once_and_listed(blobs, tmp_path):
    f = tmp_path / "part.parquet"
    f.write_bytes(b"PAR1 fake")
    d1 = blobs.put_named("predictions/churn/2026-01-01/00/a.parquet", f)
    d2 = blobs.put_named("predictions/churn/2026-01-01/01/b.parquet", b"second")
    assert d1 == digest_of_bytes(b"PAR1 fake") and d2 == digest_of_bytes(b"second")
    blobs.put(b"a plain blob is not a named object")
    with pytest.raises(Conflict, match="write-once"):
        blobs.put_named("predictions/churn/2026-01-01/00/a.parquet", b"other")
    with blobs.open_named("predictions/churn/2026-01-01/00/a.parquet") as fh:
        assert fh.read() == b"PAR1 fake"  # the first write stands
    assert blobs.list_named("predictions/churn") == [
        "predictions/churn/2026-01-01/00/a.parquet", "predictions/churn/2026-01-01/01/b.parquet"]
    assert blobs.list_named("predictions/churn/2026-01-01/01") == ["predictions/churn/2026-01-01/01/b.parquet"]
    assert blobs.list_named("predictions/other") == []
    assert blobs.list_named("") == blobs.list_named("predictions")
    with pytest.raises(NotFound):
        blobs.open_named("predictions/none.parquet")
    for bad in ("../escape", "/abs/key", "a/../b", "blobs/ab/cd"):
        with pytest.raises(InvalidInput):
            blobs.put_named(bad, b"x")


def test_symlinks_refused_at_put(blobs, tmp_path, sample_dir):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    link = tmp_path / "link.txt"
    link.symlink_to(outside)
    with pytest.raises(InvalidInput, match="symlink"):
        blobs.put(link)
    (sample_dir / "sub" / "sneaky").symlink_to(outside)
    with pytest.raises(InvalidInput, match="symlink"):
        blobs.put(sample_dir)
    (sample_dir / "sub" / "sneaky").unlink()
    (sample_dir / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symlink"):
        blobs.put(sample_dir)
    (sample_dir / "dirlink").unlink()
    os.mkfifo(sample_dir / "pipe")  # reading it would hang: refused before any read
    with pytest.raises(InvalidInput, match="not a regular file"):
        blobs.put(sample_dir)


@pytest.mark.parametrize("bad_path", ["../evil.txt", "/etc/evil.txt", "ok/../../evil.txt", "a//b", "./a", "a\\b"])
def test_malicious_manifest_refused_at_copy_out(blobs, tmp_path, bad_path):
    good = blobs.put(b"payload")
    line = json.dumps({"path": bad_path, "digest": good, "size": 7})
    fine = json.dumps({"path": "fine.txt", "digest": good, "size": 7})
    evil = blobs.put_bytes(f"{fine}\n{line}\n".encode())  # crafted by hand, past manifest.encode
    with pytest.raises(InvalidInput, match="unsafe path"):
        blobs.read_manifest(evil)
    dest = tmp_path / "victim" / "dest"
    with pytest.raises(InvalidInput):
        blobs.copy_to(evil, dest, is_dir=True)
    assert not dest.exists()
    assert not (tmp_path / "victim" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_copy_out_refuses_symlinked_folder_in_dest(blobs, tmp_path):
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("data")
    d = blobs.put(src)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="symlink"):
        blobs.copy_to(d, dest, is_dir=True)
    assert list(outside.iterdir()) == []


def test_manifest_encode_refuses_bad_trees():
    from mloop.artifacts.manifest import Entry, encode

    dg = digest_of_bytes(b"x")
    with pytest.raises(InvalidInput, match="duplicate"):
        encode([Entry("a", dg, 1), Entry("a", dg, 1)])
    with pytest.raises(InvalidInput, match="both a file and a folder"):
        encode([Entry("a", dg, 1), Entry("a/b", dg, 1)])
    with pytest.raises(InvalidInput, match="digest"):
        encode([Entry("a", "md5:123", 1)])


def _corrupt(blobs, digest: str, data: bytes = b"tampered bytes") -> None:
    key = blobs.key(digest)
    if blobs.is_local:
        with open(key, "wb") as fh:
            fh.write(data)
    else:
        blobs.fs.pipe_file(key, data)


def test_corrupt_blob_detected_on_get_and_copy_to(blobs, tmp_path):
    digest = blobs.put(b"original content")
    _corrupt(blobs, digest)
    with pytest.raises(CorruptBlob, match=digest):
        blobs.get(digest)
    assert not blobs.verify(digest)
    dest = tmp_path / "out.txt"
    with pytest.raises(CorruptBlob):
        blobs.copy_to(digest, dest)
    assert not dest.exists()
    assert list(tmp_path.glob(".out.txt*")) == []  # no temp file left either


def test_corrupt_file_in_dir_blob_writes_nothing(blobs, tmp_path, sample_dir):
    d = blobs.put(sample_dir)
    victim = next(e for e in blobs.read_manifest(d) if e.path == "sub/b.bin")
    _corrupt(blobs, victim.digest)
    dest = tmp_path / "restored"
    with pytest.raises(CorruptBlob):
        blobs.copy_to(d, dest, is_dir=True)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".restored")] == []
    # into an existing folder: nothing of the tree lands there either
    dest.mkdir()
    with pytest.raises(CorruptBlob):
        blobs.copy_to(d, dest, is_dir=True)
    assert list(dest.iterdir()) == []


def test_file_changed_while_storing_is_refused(blobs, tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"version one")
    stale = digest_of_bytes(b"version zero")  # what a stale hash cache would claim
    with pytest.raises(InvalidInput, match="changed while"):
        blobs.put_file(f, digest=stale)
    assert not blobs.exists(stale)
    assert _blob_objects(blobs) == []


_CRASH_SCRIPT = """
import sys
from mloop.artifacts import get_blob_store
store = get_blob_store()
if sys.argv[2] == "named":
    store.put_named("predictions/m/2026-01-01/00/part.parquet", sys.argv[1])
else:
    store.put(sys.argv[1])
print("survived")
"""


@pytest.mark.parametrize("how", ["blob", "named"])
def test_killed_mid_write_leaves_no_readable_blob(blobs, tmp_path, how):
    payload = os.urandom(12 * (1 << 20))  # large enough that S3 uploads parts before the crash
    f = tmp_path / "big.bin"
    f.write_bytes(payload)
    digest = digest_of_bytes(payload)
    env = {**os.environ, "MLOOP_CRASH_AT": "blob.write"}
    proc = subprocess.run([sys.executable, "-c", _CRASH_SCRIPT, str(f), how], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert "survived" not in proc.stdout
    assert not blobs.exists(digest)
    assert not blobs.fs.exists(blobs.key(digest))
    assert list(blobs.iter_blobs()) == []
    assert blobs.list_named("predictions") == []
    with pytest.raises(NotFound):
        blobs.open_named("predictions/m/2026-01-01/00/part.parquet")
    # the store still works: the same write from a healthy process succeeds and reads back whole
    if how == "named":
        assert blobs.put_named("predictions/m/2026-01-01/00/part.parquet", f) == digest
        with blobs.open_named("predictions/m/2026-01-01/00/part.parquet") as fh:
            assert fh.read() == payload
    else:
        assert blobs.put(f) == digest
        assert blobs.get(digest) == payload


def test_put_named_is_write_once_even_when_the_existence_check_races(blobs, monkeypatch):
    """Two writers that both saw no object: the second commit still fails (link / If-None-Match)."""
    blobs.put_named("logs/one.bin", b"first")
    if blobs.is_local:
        monkeypatch.setattr("mloop.artifacts.blobs.os.path.exists", lambda p: False)
    else:
        monkeypatch.setattr(blobs.fs, "exists", lambda p: False)
    with pytest.raises(Conflict, match="logs/one.bin"):
        blobs.put_named("logs/one.bin", b"second")
    monkeypatch.undo()
    with blobs.open_named("logs/one.bin") as fh:
        assert fh.read() == b"first"
