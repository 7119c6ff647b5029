"""Settings: env > [tool.mloop] in the nearest pyproject.toml > defaults; configure() and reset()."""

from __future__ import annotations

from pathlib import Path

import pytest

import mloop
import mloop.config
from mloop.errors import InvalidInput


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a pyproject.toml, the cwd two folders below it, MLOOP_HOME unset."""
    root = tmp_path / "proj"
    (root / "src" / "deep").mkdir(parents=True)
    monkeypatch.delenv("MLOOP_HOME")
    (tmp_path / ".mloop").rmdir()  # the autouse fixture's home would be found walking up
    monkeypatch.chdir(root / "src" / "deep")
    yield root
    for f in root.rglob("pyproject.toml"):  # the autouse teardown re-reads settings from here
        f.unlink()


def _write(root: Path, body: str) -> None:
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n\n" + body)


def test_defaults_without_env_or_pyproject(project):
    s = mloop.config.reset()
    here = Path.cwd().resolve()
    assert s.home == here / ".mloop"
    assert s.tracking_uri == f"sqlite:///{here / '.mloop' / 'mloop.db'}"
    assert s.artifact_uri == str(here / ".mloop" / "artifacts")
    assert s.online_store == f"sqlite:///{here / '.mloop' / 'online.db'}"
    assert (s.executor, s.heartbeat_s, s.is_embedded) == ("local", 10.0, True)


def test_home_is_nearest_dot_mloop_walking_up(project):
    (project / ".mloop").mkdir()
    assert mloop.config.reset().home == (project / ".mloop").resolve()


def test_pyproject_values_with_relative_paths_resolved_against_its_folder(project):
    _write(project, '[tool.mloop]\nhome = "state"\nartifact_uri = "blobs"\ntracking_uri = "sqlite:///meta/m.db"\n'
                    'executor = "ray"\nheartbeat_s = 0.5\nonline_store = "sqlite:///feat/online.db"\n')
    s = mloop.config.reset()
    root = project.resolve()
    assert s.home == root / "state"
    assert s.artifact_uri == str(root / "blobs")
    assert s.tracking_uri == f"sqlite:///{root / 'meta' / 'm.db'}"
    assert (s.executor, s.heartbeat_s) == ("ray", 0.5)
    assert s.online_store == f"sqlite:///{root / 'feat' / 'online.db'}"


def test_urls_in_pyproject_are_kept_as_they_are(project):
    _write(project, '[tool.mloop]\nartifact_uri = "s3://bucket/prefix"\n'
                    'tracking_uri = "postgresql+psycopg://u@db/mloop"\n')
    s = mloop.config.reset()
    assert (s.artifact_uri, s.tracking_uri) == ("s3://bucket/prefix", "postgresql+psycopg://u@db/mloop")
    assert not s.is_embedded


def test_nearest_pyproject_wins(project):
    _write(project, '[tool.mloop]\nexecutor = "outer"\n')
    _write(project / "src", '[tool.mloop]\nexecutor = "inner"\n')
    assert mloop.config.reset().executor == "inner"


def test_env_beats_pyproject(project, monkeypatch):
    _write(project, '[tool.mloop]\nexecutor = "ray"\nartifact_uri = "blobs"\n')
    monkeypatch.setenv("MLOOP_EXECUTOR", "ray://head:10001")
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", "rel/art")  # relative to the cwd, not the pyproject
    s = mloop.config.reset()
    assert s.executor == "ray://head:10001"
    assert s.artifact_uri == str(Path.cwd().resolve() / "rel" / "art")


def test_configure_beats_env_and_reset_rereads(project, monkeypatch, tmp_path):
    monkeypatch.setenv("MLOOP_EXECUTOR", "from-env")
    s = mloop.configure(executor="from-code", home=tmp_path / "h")
    assert (s.executor, s.home) == ("from-code", (tmp_path / "h").resolve())
    assert mloop.config.get_settings() is s  # cached
    assert mloop.configure(executor=None).executor == "from-env"  # None drops one override
    monkeypatch.setenv("MLOOP_EXECUTOR", "changed")
    assert mloop.config.get_settings().executor == "from-env"  # still cached
    s = mloop.config.reset()
    assert s.executor == "changed" and s.home == Path.cwd().resolve() / ".mloop"


def test_reset_runs_hooks_so_stores_follow_new_settings(tmp_path):
    from mloop.artifacts import get_blob_store

    first = get_blob_store()
    mloop.configure(artifact_uri=tmp_path / "elsewhere")
    second = get_blob_store()
    assert second is not first and second.uri == str((tmp_path / "elsewhere").resolve())


def test_unknown_pyproject_key_is_a_clear_error(project):
    _write(project, '[tool.mloop]\ntraking_uri = "sqlite:///x.db"\n')
    with pytest.raises(InvalidInput, match=r"unknown \[tool.mloop\] key\(s\) \['traking_uri'\]") as info:
        mloop.config.reset()
    assert "pyproject.toml" in str(info.value) and "tracking_uri" in str(info.value)


def test_unknown_configure_key_and_bad_values(project, monkeypatch):
    with pytest.raises(InvalidInput, match="unknown setting.*'colour'"):
        mloop.configure(colour="red")
    monkeypatch.setenv("MLOOP_HEARTBEAT_S", "soon")
    with pytest.raises(InvalidInput, match="MLOOP_HEARTBEAT_S.*'soon'"):
        mloop.config.reset()
    monkeypatch.setenv("MLOOP_HEARTBEAT_S", "-1")
    with pytest.raises(InvalidInput, match="positive"):
        mloop.config.reset()
    monkeypatch.delenv("MLOOP_HEARTBEAT_S")  # the autouse teardown re-reads settings


def test_broken_pyproject_is_a_clear_error(project):
    (project / "pyproject.toml").write_text("[tool.mloop\n")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        mloop.config.reset()


def test_mloop_init_creates_home(project):
    from typer.testing import CliRunner

    from mloop.cli import _build

    result = CliRunner().invoke(_build(), ["init"])
    assert result.exit_code == 0, result.output
    home = Path.cwd().resolve() / ".mloop"
    assert (home / "logs").is_dir() and (home / "cache").is_dir()
    assert (home / "mloop.db").is_file()  # the embedded store exists and is migrated
    assert str(home) in result.output
    assert mloop.config.get_settings().home == home
    # run again: nothing breaks, nothing is lost
    assert CliRunner().invoke(_build(), ["init"]).exit_code == 0
