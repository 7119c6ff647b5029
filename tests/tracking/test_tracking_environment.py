"""The environment a run records: Python, platform, packages, command line and git state, with
the diff of a dirty work tree as an artifact, and never an environment variable's value."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest
from sqlalchemy import select

import mloop
from mloop.artifacts import get_blob_store
from mloop.store.tracking import RunArtifactRepo, environments

SECRET = "s3cr3t-token-value-9f2c41"


def _git(repo, *args) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    path = tmp_path / "project"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text("print('v1')\n")
    _git(path, "add", "train.py")
    _git(path, "commit", "-q", "-m", "first")
    monkeypatch.chdir(path)
    return path


def test_environment_of_a_dirty_work_tree(store, repo, monkeypatch):
    monkeypatch.setenv("MLOOP_TEST_SECRET", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    (repo / "train.py").write_text("print('v2')\n")
    (repo / "untracked.txt").write_text("not in the diff\n")
    with mloop.start_run() as run:
        pass
    env = mloop.get_run(run.id).environment
    assert env["python"] == sys.version.split()[0]
    assert env["packages"]["sqlalchemy"] == version("sqlalchemy")
    assert env["command"] == sys.argv
    assert env["platform"]
    assert env["git"]["commit"] == _git(repo, "rev-parse", "HEAD")
    assert env["git"]["branch"] == "main" and env["git"]["dirty"] is True
    artifacts = {a["path"]: a for a in RunArtifactRepo(store).list(run.id)}
    diff = get_blob_store().get(artifacts["environment/git.diff"]["digest"])
    assert diff.decode() == subprocess.run(["git", "diff", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    assert b"+print('v2')" in diff and b"untracked" not in diff
    assert env["git"]["diff_digest"] == artifacts["environment/git.diff"]["digest"]
    with store.read() as conn:
        stored = conn.execute(select(environments.c.data)).scalars().all()
    assert stored and all(SECRET not in text for text in stored)
    assert "MLOOP_TEST_SECRET" not in str(env) and "AWS_SECRET_ACCESS_KEY" not in str(env)


def test_clean_work_tree_has_no_diff_artifact_and_children_share_the_environment(store, repo):
    with mloop.start_run() as parent, mloop.start_run(nested=True) as child:
        pass
    env = mloop.get_run(parent.id).environment
    assert env["git"]["dirty"] is False and "diff_digest" not in env["git"]
    assert RunArtifactRepo(store).list(parent.id) == []
    assert mloop.get_run(child.id).environment == env


def test_outside_git_there_is_no_git_state(store, tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    with mloop.start_run() as run:
        pass
    assert mloop.get_run(run.id).environment["git"] == {}


def test_a_big_diff_is_capped(store, repo, monkeypatch):
    from mloop.tracking import environment

    monkeypatch.setattr(environment, "DIFF_CAP", 1000)
    (repo / "train.py").write_text("x = 1\n" * 2000)
    info, diff = environment.git_state(repo)
    assert info["dirty"] and info["diff_truncated"] and len(diff) == 1000


def test_outside_git_the_record_says_what_git_and_platform_say(store, tmp_path, monkeypatch):
    import platform

    from mloop.tracking import environment

    outside = tmp_path / "plain" / "deeper"
    outside.mkdir(parents=True)
    monkeypatch.chdir(outside)
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=outside, capture_output=True).returncode != 0
    env_id, record, diff = environment.capture()
    assert record == {
        "python": sys.version.split()[0], "implementation": platform.python_implementation(),
        "platform": platform.platform(), "machine": platform.machine(),
        "packages": environment.installed_packages(), "command": list(sys.argv), "git": {},
    }
    assert diff is None and env_id.startswith("blake3:")


def test_a_subfolder_of_a_work_tree_records_its_commit(store, repo, monkeypatch):
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    with mloop.start_run() as run:
        pass
    git = mloop.get_run(run.id).environment["git"]
    assert git == {"commit": _git(repo, "rev-parse", "HEAD"), "branch": "main", "dirty": False}


def test_a_linked_worktree_records_its_commit(store, repo, tmp_path, monkeypatch):
    from mloop.tracking import environment

    linked = tmp_path / "linked"
    _git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    assert (linked / ".git").is_file()
    info, _ = environment.git_state(linked)
    assert info == {"commit": _git(repo, "rev-parse", "HEAD"), "branch": "side", "dirty": False}


def test_git_dir_in_the_environment_is_followed_from_outside_a_repo(store, repo, tmp_path, monkeypatch):
    from mloop.tracking import environment

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(repo))
    info, _ = environment.git_state(outside)
    assert info == {"commit": _git(repo, "rev-parse", "HEAD"), "branch": "main", "dirty": False}


def test_a_bare_repository_records_its_commit(store, repo, tmp_path):
    from mloop.tracking import environment

    bare = tmp_path / "bare.git"
    _git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    info, diff = environment.git_state(bare)
    assert info == {"commit": _git(repo, "rev-parse", "HEAD"), "branch": "main", "dirty": False} and diff is None


def test_a_detached_head_records_head_as_its_branch(store, repo):
    from mloop.tracking import environment

    commit = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "--detach")
    assert environment.git_state(repo) == ({"commit": commit, "branch": "HEAD", "dirty": False}, None)


def test_a_repository_without_commits_has_no_git_state(store, tmp_path):
    from mloop.tracking import environment

    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    assert environment.git_state(empty) == ({}, None)
