"""Packs: a folder of many small files is stored as one pack + index, and every reader finds its blobs
(checkout, the blob store, push/pull, gc), verified; a damaged or half-written pack is never used."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mloop
from mloop.artifacts import packs
from mloop.config import get_settings
from mloop.errors import CorruptBlob, NotFound


def _tree(root: Path, n: int = 80, seed: int = 3, big: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        p = root / f"d{i % 5}" / f"f{i:03d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes(int(rng.integers(0, 20_000))))
    if big:  # past packs.MAX_BLOB: stays a loose blob
        (root / "big.bin").write_bytes(rng.bytes(packs.MAX_BLOB + 1))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _pack_files(store) -> list[str]:  # noqa: ANN001
    folder = Path(store.root) / "packs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_many_small_files_go_into_one_pack_and_check_out_byte_for_byte(tmp_path):
    store = mloop.artifacts.get_blob_store()
    src = _tree(tmp_path / "ds")
    dv = mloop.data.add(src, name="ds")
    names = _pack_files(store)
    assert len(names) == 2 and names[0].endswith(".idx") and names[1].endswith(".pack")
    loose = set(store.iter_blobs(packed=False))
    big = next(e for e in dv.files if e.path == "big.bin")
    assert big.digest in loose  # the large file stays loose
    small = [e for e in dv.files if e.path != "big.bin"]
    assert not {e.digest for e in small} & loose  # every small file is packed, none loose
    assert all(store.exists(e.digest) and store.verify(e.digest) for e in dv.files)
    assert {e.digest for e in dv.files} <= set(store.iter_blobs())
    # read back through the blob store, against the source bytes
    original = _files(src)
    for e in small[:10]:
        assert store.get(e.digest) == original[e.path]
        assert store.local_path(e.digest) is None  # no file of its own
    mloop.data.checkout("ds@1", dest=tmp_path / "out")
    assert _files(tmp_path / "out") == original
    mloop.data.checkout("ds@1", dest=tmp_path / "linked", link="hardlink")  # packed blobs are copied
    assert _files(tmp_path / "linked") == original


def test_an_unchanged_tree_under_another_name_writes_no_new_blobs(tmp_path):
    store = mloop.artifacts.get_blob_store()
    src = _tree(tmp_path / "ds")
    mloop.data.add(src, name="one")
    before = _pack_files(store), sorted(store.iter_blobs(packed=False))
    dv = mloop.data.add(src, name="two")
    assert (_pack_files(store), sorted(store.iter_blobs(packed=False))) == before
    assert dv.digest == mloop.data.get("one@1").digest
    # one file changed: the next add stores only that file (a handful of new blobs: loose)
    (src / "d0" / "f000.bin").write_bytes(b"changed")
    dv3 = mloop.data.add(src, name="one")
    assert _pack_files(store) == before[0]
    assert store.get(next(e.digest for e in dv3.files if e.path == "d0/f000.bin")) == b"changed"


def test_a_damaged_pack_is_refused_by_name_and_nothing_is_written(tmp_path, caplog):
    store = mloop.artifacts.get_blob_store()
    src = _tree(tmp_path / "ds", big=False)
    dv = mloop.data.add(src, name="ds")
    victim = next(e for e in dv.files if e.size > 100)
    where = store.packs.find(victim.digest)
    with open(where.pack, "r+b") as fh:
        fh.seek(where.offset + 7)
        byte = fh.read(1)
        fh.seek(where.offset + 7)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert not store.verify(victim.digest)
    with pytest.raises(CorruptBlob, match=victim.digest):
        store.get(victim.digest)
    with pytest.raises(CorruptBlob, match=victim.digest):
        mloop.data.checkout("ds@1", dest=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # a damaged index is named, with what to do; its blobs read as missing, nothing else breaks
    index = where.pack[: -len(".pack")] + ".idx"
    data = bytearray(Path(index).read_bytes())
    data[20] ^= 0xFF
    with pytest.raises(CorruptBlob, match="pack index .* is damaged"):
        packs.decode_index(bytes(data), index)
    loose = store.put_bytes(b"a loose blob")
    Path(index).write_bytes(bytes(data))
    packs._forget()
    store = mloop.artifacts.BlobStore(store.uri)
    with caplog.at_level("WARNING", logger="mloop.artifacts.packs"):
        assert not store.exists(victim.digest)
    assert "is damaged" in caplog.text
    assert store.get(loose) == b"a loose blob"
    with pytest.raises(NotFound, match=victim.digest):
        store.get(victim.digest)


def test_a_pack_written_by_another_process_is_seen_at_once(tmp_path):
    store = mloop.artifacts.get_blob_store()
    assert store.packs.digests() == []  # loaded now, before the other process writes
    src = _tree(tmp_path / "ds", big=False)
    code = (f"import mloop; mloop.configure(tracking_uri={get_settings().tracking_uri!r}, "
            f"artifact_uri={store.uri!r}); print(mloop.data.add({str(src)!r}, name='other').digest)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert _pack_files(store)
    dv = mloop.data.get("other@1")
    assert dv.digest == out.stdout.strip()
    original = _files(src)
    assert all(store.get(e.digest) == original[e.path] for e in dv.files)


def test_push_and_pull_a_packed_store_through_a_folder_remote(tmp_path):
    src = _tree(tmp_path / "ds")
    dv = mloop.data.add(src, name="ds")
    mloop.data.remote_add("shelf", str(tmp_path / "remote"), default=True)
    pushed = mloop.data.push()
    assert pushed["pushed"] == pushed["blobs"] == len(dv.files) + 1
    remote = mloop.artifacts.BlobStore(str(tmp_path / "remote"))
    assert all(remote.local_path(e.digest) is not None for e in dv.files)  # remotes hold loose blobs
    assert not (tmp_path / "remote" / "packs").exists()
    mloop.configure(artifact_uri=str(tmp_path / "fresh-store"))
    assert mloop.data.pull(["ds@1"])["pulled"] == len(dv.files) + 1
    fresh = mloop.artifacts.get_blob_store()
    big = next(e for e in dv.files if e.path == "big.bin")
    assert set(fresh.iter_blobs(packed=False)) == {big.digest, dv.digest}  # the small files came as a pack
    assert len(_pack_files(fresh)) == 2
    mloop.data.checkout("ds@1", dest=tmp_path / "back")
    assert _files(tmp_path / "back") == _files(src)
    # a damaged blob on the remote is refused on arrival, named; no pack is published
    victim = next(e for e in dv.files if e.size > 0 and e.path != "big.bin")
    remote_file = remote.local_path(victim.digest)
    remote_file.write_bytes(b"evil" + remote_file.read_bytes()[4:])
    mloop.configure(artifact_uri=str(tmp_path / "third-store"))
    with pytest.raises(CorruptBlob, match=victim.digest):
        mloop.data.pull(["ds@1"])
    third = mloop.artifacts.get_blob_store()
    assert _pack_files(third) == [] and not third.exists(victim.digest)


def test_gc_rewrites_a_pack_without_its_dead_blobs_and_keeps_the_live_ones(tmp_path):
    store = mloop.artifacts.get_blob_store()
    src = _tree(tmp_path / "ds", big=False)
    dv = mloop.data.add(src, name="ds")
    live = [(e.digest, store.get(e.digest)) for e in dv.files[:20]]
    orphans = [os.urandom(300 + i) for i in range(5)]
    writer = packs.PackWriter(store.root, "test")
    for digest, data in live:
        writer.add(digest, data)
    orphan_digests = []
    for data in orphans:
        orphan_digests.append(mloop.artifacts.digest_of_bytes(data))
        writer.add(orphan_digests[-1], data)
    writer.stage()
    writer.publish()
    mixed = store.packs.find(orphan_digests[0]).pack
    assert mloop.data.gc()["young"] == 5  # young packs are kept whole
    old = time.time() - 3 * 86400
    os.utime(mixed, (old, old))
    dry = mloop.data.gc()
    assert sorted(dry["would_delete"]) == sorted(orphan_digests) and dry["bytes"] == sum(map(len, orphans))
    assert all(store.exists(d) for d in orphan_digests)
    done = mloop.data.gc(dry_run=False)
    assert sorted(done["deleted"]) == sorted(orphan_digests)
    assert not os.path.exists(mixed)
    assert not any(store.exists(d) for d in orphan_digests)
    assert all(store.get(d) == data for d, data in live)
    mloop.data.checkout("ds@1", dest=tmp_path / "after-gc")
    assert _files(tmp_path / "after-gc") == _files(src)
    assert mloop.data.gc(dry_run=False)["deleted"] == []


@pytest.mark.parametrize("label", ["blob.write", "data.add.blobs_staged"])
def test_add_killed_while_packing_leaves_no_visible_pack(tmp_path, label):
    from support import run_cli

    src = _tree(tmp_path / "k", big=False)
    out = run_cli("data", "add", str(src), "--name", "k", env={"MLOOP_CRASH_AT": label})
    assert out.returncode == -9, (out.returncode, out.stderr)
    store = mloop.artifacts.get_blob_store()
    assert not [n for n in _pack_files(store) if not n.startswith("pack.tmp-")]  # only temp files
    assert store.packs.digests() == []
    assert mloop.data.gc(dry_run=False, min_age_s=0)["stale_temp_files"] >= 1
    assert _pack_files(store) == []
    assert mloop.data.add(src, name="k").version == 1
    mloop.data.checkout("k@1", dest=tmp_path / "out")
    assert _files(tmp_path / "out") == _files(src)
