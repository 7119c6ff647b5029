"""Dataset versions: round trips, dedup, the hash cache, checks, bad input, lineage, delete/restore."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.data import ingest
from mloop.errors import CorruptBlob, InvalidInput, NotFound, ValidationFailed


def _tree(root: Path, n: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        p = root / f"part{i % 3}" / f"f{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes(int(rng.integers(0, 3000))))
    (root / "big.bin").write_bytes(rng.bytes(5 << 20))  # above the threaded-hash threshold
    return root


def _age(root: Path, seconds: float = 3600) -> None:
    """Make files look written long ago, so the hash cache trusts them (racy-mtime rule)."""
    past = time.time() - seconds
    for p in [root, *root.rglob("*")] if root.is_dir() else [root]:
        os.utime(p, (past, past))


def _same_tree(a: Path, b: Path) -> None:
    fa = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert fa == fb
    for rel in fa:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_folder_and_file_round_trip_byte_for_byte(tracking_uri, tmp_path):
    src = _tree(tmp_path / "raw")
    dv = mloop.data.add(src, name="raw", message="first cut")
    assert dv.created and dv.version == 1 and dv.is_dir and dv.file_count == 13
    assert dv.uri == "datasets:/raw@1" and dv.message == "first cut"
    assert [e.path for e in dv.files] == sorted(e.path for e in dv.files)
    out = mloop.data.checkout("raw@1", dest=tmp_path / "copy")
    assert out[0]["written"] == 13
    _same_tree(src, tmp_path / "copy")
    # a file version; dest an existing folder -> the file inside it
    f = tmp_path / "one.csv"
    f.write_text("a,b\n1,x\n2,y\n")
    fv = mloop.data.add(f, name="one")
    assert not fv.is_dir and fv.format == "csv" and fv.rows == 2
    (tmp_path / "outdir").mkdir()
    mloop.data.checkout("one@latest", dest=tmp_path / "outdir")
    assert (tmp_path / "outdir" / "one.csv").read_bytes() == f.read_bytes()
    got = mloop.data.get("datasets:/one/1")
    assert got.path.read_bytes() == f.read_bytes()
    pd.testing.assert_frame_equal(got.to_pandas(), pd.read_csv(f), check_dtype=False)


def test_dedup_latest_and_across_names(tmp_path):
    src = _tree(tmp_path / "d")
    first = mloop.data.add(src, name="a")
    again = mloop.data.add(src, name="a")
    assert again.created is False and again.version == 1 and again.digest == first.digest
    other = mloop.data.add(src, name="b")
    assert other.created and other.digest == first.digest
    store = mloop.artifacts.get_blob_store()
    blobs = list(store.iter_blobs())
    assert len(blobs) == len(set(blobs)) == len({e.digest for e in first.files}) + 1  # + the manifest
    (src / "part0" / "f0.bin").write_bytes(b"new")
    second = mloop.data.add(src, name="a")
    assert second.created and second.version == 2 and second.digest != first.digest


def test_tables_equal_tables_equal_digests(tmp_path):
    pl = pytest.importorskip("polars")
    df = pd.DataFrame({"x": np.arange(50, dtype="int64"), "s": [f"v{i % 7}" for i in range(50)]})
    a = mloop.data.add(df, name="t")
    b = mloop.data.add(df.copy(), name="t2")
    assert a.digest == b.digest and [e.path for e in a.files] == ["data.parquet"]
    assert a.rows == 50 and a.schema[0] == {"name": "x", "dtype": "int64"}
    pd.testing.assert_frame_equal(mloop.data.get("t@1").to_pandas(), df, check_dtype=False)
    assert mloop.data.get("t").to_arrow().num_rows == 50
    pv = mloop.data.add(pl.from_pandas(df), name="t3")
    assert pv.rows == 50
    prof = mloop.data.get("t@1").profile
    assert prof.columns["x"]["mean"] == pytest.approx(df["x"].mean())
    assert prof.to_dict()["sample"]["digest"].startswith("blake3:")
    pd.testing.assert_frame_equal(prof.sample(), df, check_dtype=False)


def test_hash_cache_does_not_reread_unchanged_tree(tmp_path, monkeypatch):
    src = _tree(tmp_path / "d")
    _age(src)
    mloop.data.add(src, name="d")
    reads = []
    real_read, real_large = ingest.read_bytes, ingest.hash_large
    monkeypatch.setattr(ingest, "read_bytes", lambda p, *a: reads.append(p) or real_read(p, *a))
    monkeypatch.setattr(ingest, "hash_large", lambda p: reads.append(p) or real_large(p))
    again = mloop.data.add(src, name="d")
    assert again.created is False and reads == []
    assert mloop.data.status(src)[0]["state"] == "unchanged" and reads == []
    # one changed file is the only one read
    changed = src / "part1" / "f1.bin"
    changed.write_bytes(b"different")
    _age(changed, 1800)
    assert mloop.data.status(src)[0]["modified"] == ["part1/f1.bin"]
    assert reads == [str(changed)]


def test_racy_mtime_is_not_trusted(tmp_path, monkeypatch):
    f = tmp_path / "fresh.bin"
    f.write_bytes(b"x" * 100)  # mtime = now: within 2 s of being recorded
    mloop.data.add(f, name="fresh")
    reads = []
    real = ingest.read_bytes
    monkeypatch.setattr(ingest, "read_bytes", lambda p, *a: reads.append(p) or real(p, *a))
    # same size, same mtime, other content: only re-reading catches it
    st = f.stat()
    f.write_bytes(b"y" * 100)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    dv = mloop.data.add(f, name="fresh")
    assert reads == [str(f)] and dv.created and dv.version == 2


def test_check_refuses_unless_forced_and_providers_run(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a\n1\n2\n")
    seen = []

    def no_small(staged):
        seen.append((staged.name, staged.version, staged.rows, staged.path))
        if staged.rows < 10:
            raise ValueError("fewer than 10 rows")

    with pytest.raises(ValidationFailed, match="fewer than 10 rows"):
        mloop.data.add(f, name="x", check=no_small)
    assert seen == [("x", None, 2, f.absolute())]
    with pytest.raises(NotFound):
        mloop.data.get("x@latest")
    dv = mloop.data.add(f, name="x", check=no_small, force=True)
    assert dv.version == 1 and dv.to_dict()["forced"] is True

    calls = []
    provider = mloop.data.register_check_provider(lambda staged: calls.append(staged.name))
    try:
        mloop.data.add(pd.DataFrame({"a": [1]}), name="y")
    finally:
        mloop.data.unregister_check_provider(provider)
    assert calls == ["y"]


def test_bad_input_names_the_file_and_leaves_no_version(tmp_path):
    with pytest.raises(NotFound, match="missing.parquet"):
        mloop.data.add(tmp_path / "missing.parquet", name="m")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1garbagePAR1")
    with pytest.raises(InvalidInput, match="bad.parquet"):
        mloop.data.add(bad, name="m")
    with pytest.raises(NotFound, match="no dataset named 'm'"):
        mloop.data.get("m")
    with pytest.raises(InvalidInput, match="invalid dataset name"):
        mloop.data.add(bad, name="../x")
    link = tmp_path / "link"
    link.symlink_to(bad)
    with pytest.raises(InvalidInput, match="symlink"):
        mloop.data.add(link, name="m")
    with pytest.raises(NotFound, match="no alias 'champion'"):
        mloop.data.get("m@champion")


def test_concurrent_adds_get_distinct_versions(tracking_uri, tmp_path):
    errors, versions = [], []

    def add(i: int) -> None:
        try:
            versions.append(mloop.data.add(pd.DataFrame({"i": [i]}), name="race").version)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]


def test_use_records_lineage_inside_a_run(tracking_uri):
    mloop.data.add(pd.DataFrame({"a": [1, 2]}), name="feat")
    from mloop.store import get_store
    from mloop.store.lineage import LineageRepo
    from mloop.tracking.lineage import resolve

    with mloop.start_run(experiment="e") as run:
        dv = run.use_dataset("feat@latest")
        mloop.data.get("feat/1")
    assert dv.version == 1
    edges = LineageRepo(get_store()).edges(("run", run.id), "in")
    assert [(e.from_kind, e.from_id, e.relation) for e in edges] == [("dataset_version", "feat/1", "input")]
    assert resolve("datasets:/feat@latest") == ("dataset_version", "feat/1")
    mloop.data.get("feat")  # no active run: no edge, no error


def test_soft_delete_and_restore(tmp_path):
    for i in range(2):
        mloop.data.add(pd.DataFrame({"a": [i]}), name="s")
    mloop.data.delete("s@2")
    assert mloop.data.get("s@latest").version == 1
    with pytest.raises(NotFound, match="restore"):
        mloop.data.get("s@2")
    assert [v.version for v in mloop.data.log_versions("s", include_deleted=True)] == [2, 1]
    mloop.data.restore("s@2")
    assert mloop.data.get("s@latest").version == 2


def test_corrupt_blob_is_detected_on_checkout(tmp_path):
    src = tmp_path / "c.bin"
    src.write_bytes(b"a" * 5000)
    dv = mloop.data.add(src, name="c")
    blob = mloop.artifacts.get_blob_store().local_path(dv.files[0].digest)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"b" * 5000)
    with pytest.raises(CorruptBlob, match=dv.files[0].digest):
        mloop.data.checkout("c@1", dest=tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_hardlink_checkout_is_read_only(tmp_path):
    src = _tree(tmp_path / "h", n=3)
    mloop.data.add(src, name="h")
    mloop.data.checkout("h@1", dest=tmp_path / "linked", link="hardlink")
    f = tmp_path / "linked" / "big.bin"
    assert f.stat().st_nlink >= 2 and not os.access(f, os.W_OK) or os.geteuid() == 0
    assert f.stat().st_mode & 0o222 == 0
    _same_tree(src, tmp_path / "linked")


def test_diff_files_and_table_columns(tmp_path):
    rng = np.random.default_rng(3)
    a = pd.DataFrame({"x": rng.normal(0, 1, 500), "c": rng.choice(["u", "v"], 500), "z": np.arange(500)})
    b = a.assign(x=a["x"] + 2.0).drop(columns=["z"]).assign(w=1)
    mloop.data.add(a, name="tab")
    mloop.data.add(b.iloc[:450], name="tab")
    d = mloop.data.diff("tab@1", "tab@2").to_dict()
    assert d["files"]["changed"] == ["data.parquet"]
    assert d["rows"] == {"a": 500, "b": 450, "change": -50}
    assert d["schema"]["added"] == ["w"] and d["schema"]["removed"] == ["z"]
    top = d["columns"][0]
    assert top["name"] == "x"
    expected = (b["x"].iloc[:450].mean() - a["x"].mean()) / a["x"].std()
    assert top["mean_shift_in_std"] == pytest.approx(expected)
    d1 = tmp_path / "d1"
    _tree(d1, n=4)
    mloop.data.add(d1, name="files")
    (d1 / "part0" / "f0.bin").unlink()
    (d1 / "new.txt").write_text("n")
    (d1 / "big.bin").write_bytes(b"changed")
    mloop.data.add(d1, name="files")
    fd = mloop.data.diff("files@1", "files@2")
    assert fd.added == ["new.txt"] and fd.removed == ["part0/f0.bin"] and fd.changed == ["big.bin"]


def test_add_get_checkout_on_local_and_s3_artifact_stores(artifact_uri, tmp_path):
    src = _tree(tmp_path / "s3tree", n=5)
    dv = mloop.data.add(src, name="tree")
    assert mloop.artifacts.get_blob_store().exists(dv.digest)
    mloop.data.checkout("tree@1", dest=tmp_path / "out")
    _same_tree(src, tmp_path / "out")
    assert mloop.data.status(src)[0]["state"] == "unchanged"
    df = pd.DataFrame({"a": np.arange(20), "b": ["x", "y"] * 10})
    tv = mloop.data.add(df, name="tab")
    got = mloop.data.get(tv.uri)
    pd.testing.assert_frame_equal(got.to_pandas(), df, check_dtype=False)
    pd.testing.assert_frame_equal(got.profile.sample(), df, check_dtype=False)


def test_large_copy_is_exact_even_when_the_source_changes(tmp_path, monkeypatch):
    import blake3

    src = tmp_path / "large.bin"
    src.write_bytes(os.urandom(6 << 20) + b"tail")  # not whole 4 KiB blocks: the O_DIRECT tail path
    _age(src)
    calls = []
    real = ingest._copy_mapped

    def mapped_then_touch(s, d, label):
        calls.append(s)
        digest = real(s, d, label)
        with open(s, "ab") as fh:  # a writer appends while we copy
            fh.write(b"more")
        return digest

    monkeypatch.setattr(ingest, "_copy_mapped", mapped_then_touch)
    digest = ingest.copy_hashing(str(src), str(tmp_path / "copy1"))
    assert calls == [str(src)]
    assert (tmp_path / "copy1").read_bytes() == src.read_bytes()  # redone through the buffer
    assert digest == "blake3:" + blake3.blake3(src.read_bytes()).hexdigest()
    monkeypatch.setattr(ingest, "_copy_mapped", real)
    _age(src)
    digest = ingest.copy_hashing(str(src), str(tmp_path / "copy2"))
    assert (tmp_path / "copy2").read_bytes() == src.read_bytes()
    assert digest == "blake3:" + blake3.blake3(src.read_bytes()).hexdigest()
    mloop.data.add(src, name="large")
    mloop.data.checkout("large@1", dest=tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
