"""Pointers under git, push/pull (folder and S3), gc, crash safety of add, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.errors import CorruptBlob
from support import run_cli


def _tree(root: Path, n: int = 8, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        p = root / f"d{i % 2}" / f"f{i}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.bytes(int(rng.integers(1, 4000))))
    return root


def _same_tree(a: Path, b: Path) -> None:
    fa = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert fa == fb
    assert all((a / r).read_bytes() == (b / r).read_bytes() for r in fa)


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_pointers_in_git_and_a_fresh_clone_pulls_from_a_folder_remote(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    _git("init", "-q", cwd=project)
    data = _tree(project / "data" / "images")
    table = project / "data" / "train.csv"
    table.write_text("a,b\n1,2\n3,4\n")
    env = {"MLOOP_HOME": str(project / ".mloop")}
    for args in (["init"], ["data", "add", "data/images", "--name", "images"], ["data", "add", "data/train.csv", "--name", "train"],
                 ["data", "remote", "add", "origin", str(tmp_path / "remote"), "--default"], ["data", "push"]):
        out = run_cli(*args, env=env, cwd=project)
        assert out.returncode == 0, out.stderr
    pointer = (project / "data" / "images.mloop").read_text()
    assert "name: images" in pointer and "version: 1" in pointer
    assert set((project / "data" / ".gitignore").read_text().split()) == {"/images", "/train.csv"}
    _git("add", "-A", cwd=project)
    _git("commit", "-q", "-m", "data pointers", cwd=project)
    tracked = _git("ls-files", cwd=project).split()
    assert "data/images.mloop" in tracked and "data/train.csv.mloop" in tracked
    assert not any(t.startswith("data/images/") for t in tracked) and "data/train.csv" not in tracked

    clone = tmp_path / "clone"
    _git("clone", "-q", str(project), str(clone), cwd=tmp_path)
    assert not (clone / "data" / "images").exists()
    cenv = {"MLOOP_HOME": str(clone / ".mloop")}
    status = run_cli("data", "status", "--json", env=cenv, cwd=clone)
    assert [s["state"] for s in json.loads(status.stdout)] == ["missing", "missing"]
    assert run_cli("data", "remote", "add", "origin", str(tmp_path / "remote"), "--default",
                   env=cenv, cwd=clone).returncode == 0
    pulled = run_cli("data", "pull", env=cenv, cwd=clone)
    assert pulled.returncode == 0, pulled.stderr
    _same_tree(data, clone / "data" / "images")
    assert (clone / "data" / "train.csv").read_bytes() == table.read_bytes()
    status = run_cli("data", "status", "--json", env=cenv, cwd=clone)
    assert [s["state"] for s in json.loads(status.stdout)] == ["unchanged", "unchanged"]
    # delete the data and restore every pointer with a bare checkout
    shutil.rmtree(clone / "data" / "images")
    out = run_cli("data", "checkout", env=cenv, cwd=clone)
    assert out.returncode == 0, out.stderr
    _same_tree(data, clone / "data" / "images")


def test_push_pull_s3_only_missing_blobs_and_verify(tmp_path, s3_bucket):
    src = _tree(tmp_path / "ds")
    dv = mloop.data.add(src, name="ds")
    mloop.data.add(pd.DataFrame({"a": range(5)}), name="tab")
    mloop.data.remote_add("s3", f"s3://{s3_bucket}/remote", default=True)
    first = mloop.data.push()
    assert first["pushed"] == first["blobs"] > len(dv.files)
    assert mloop.data.push()["pushed"] == 0  # nothing missing the second time
    # a fresh local store pulls everything back from S3
    mloop.configure(artifact_uri=str(tmp_path / "fresh-store"))
    seen = []
    got = mloop.data.pull(["ds@1"], progress=lambda done, total: seen.append((done, total)))
    assert got["pulled"] == len(dv.files) + 1 and seen[-1][0] == seen[-1][1]
    mloop.data.checkout("ds@1", dest=tmp_path / "back")
    _same_tree(src, tmp_path / "back")
    # a corrupted remote blob is refused on arrival, named, and not stored
    import boto3

    victim = dv.files[0].digest
    hexpart = victim.split(":")[1]
    s3 = boto3.client("s3", endpoint_url=os.environ["MLOOP_S3_ENDPOINT_URL"], region_name="us-east-1")
    s3.put_object(Bucket=s3_bucket, Key=f"remote/blobs/{hexpart[:2]}/{hexpart[2:]}", Body=b"evil")
    mloop.configure(artifact_uri=str(tmp_path / "third-store"))
    with pytest.raises(CorruptBlob, match=victim):
        mloop.data.pull(["ds@1"])
    assert not mloop.artifacts.get_blob_store().exists(victim)


def test_gc_keeps_referenced_and_young_blobs(tmp_path):
    store = mloop.artifacts.get_blob_store()
    src = _tree(tmp_path / "g")
    dv = mloop.data.add(src, name="g")
    orphan_old = store.put_bytes(b"nobody points at me")
    orphan_young = store.put_bytes(b"nor at me, but I am new")
    old = time.time() - 3 * 86400
    for digest in [orphan_old, dv.digest, *(e.digest for e in dv.files)]:
        os.utime(store.local_path(digest), (old, old))
    dry = mloop.data.gc()
    assert dry["would_delete"] == [orphan_old] and dry["young"] == 1
    assert store.exists(orphan_old)
    done = mloop.data.gc(dry_run=False)
    assert done["deleted"] == [orphan_old]
    assert not store.exists(orphan_old) and store.exists(orphan_young)
    assert all(store.exists(e.digest) for e in dv.files) and store.exists(dv.digest)
    mloop.data.checkout("g@1", dest=tmp_path / "after-gc")
    _same_tree(src, tmp_path / "after-gc")


@pytest.mark.parametrize("label", ["blob.write", "data.add.blobs_staged", "data.add.blobs_written",
                                   "data.add.before_commit", "data.add.in_transaction"])
def test_add_killed_at_each_crash_point_leaves_no_version_and_no_partial_blob(tmp_path, label):
    src = _tree(tmp_path / "k", n=4)
    (src / "large.bin").write_bytes(os.urandom(5 << 20))
    out = run_cli("data", "add", str(src), "--name", "k", env={"MLOOP_CRASH_AT": label})
    assert out.returncode == -9, (out.returncode, out.stderr)
    from mloop.store import get_store
    from mloop.store.data import DatasetVersionRepo

    assert DatasetVersionRepo(get_store()).versions("k") == []
    store = mloop.artifacts.get_blob_store()
    for digest in store.iter_blobs():
        assert store.verify(digest), f"partial blob {digest} after a crash at {label}"
    # and the next add succeeds
    assert mloop.data.add(src, name="k").version == 1


def test_cli_add_list_log_show_diff_json_and_bad_input(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("x,y\n1,a\n2,b\n")
    out = run_cli("data", "add", str(f), "--name", "t", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == 1
    again = run_cli("data", "add", str(f), "--name", "t")
    assert "unchanged" in again.stdout
    f.write_text("x,y\n1,a\n2,b\n3,c\n")
    assert run_cli("data", "add", str(f), "--name", "t").returncode == 0
    listed = json.loads(run_cli("data", "list", "--json").stdout)
    assert listed[0]["name"] == "t" and listed[0]["latest"] == 2
    shown = json.loads(run_cli("data", "show", "t@2", "--json").stdout)
    assert shown["rows"] == 3 and shown["files"][0]["path"] == "t.csv"
    diff = json.loads(run_cli("data", "diff", "t@1", "t@2", "--json").stdout)
    assert diff["rows"]["change"] == 1
    assert "t@2" in run_cli("data", "log", "t").stdout or "2" in run_cli("data", "log", "t").stdout
    missing = run_cli("data", "add", str(tmp_path / "nope.csv"), "--name", "t")
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    corrupt = run_cli("data", "add", str(bad), "--name", "b")
    assert corrupt.returncode == 2 and "bad.parquet" in corrupt.stderr
    assert run_cli("data", "show", "nobody@1").returncode == 2
    assert sys.executable


def test_gc_on_s3_keeps_live_and_young(artifact_uri, tmp_path):
    store = mloop.artifacts.get_blob_store()
    dv = mloop.data.add(_tree(tmp_path / "s", n=3), name="s")
    orphan = store.put_bytes(b"orphan")
    assert mloop.data.gc(dry_run=False)["deleted"] == []  # everything is younger than a day
    assert store.exists(orphan)
    from mloop.data.garbage import gc

    done = gc(dry_run=False, min_age_s=0)
    assert done["deleted"] == [orphan] and not store.exists(orphan)
    assert all(store.exists(d) for d in [dv.digest, *(e.digest for e in dv.files)])
