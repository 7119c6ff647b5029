"""Reading a run's artifacts back: mloop.artifacts.list / download and `mloop runs artifacts`."""

from __future__ import annotations

import json

import pytest

import mloop
import mloop.artifacts
from mloop.errors import NotFound
from support import invoke_cli, run_cli


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def logged_run(artifact_uri, tmp_path):
    plots = tmp_path / "work" / "plots"
    (plots / "roc").mkdir(parents=True)
    (plots / "roc" / "curve.png").write_bytes(b"\x89PNG fake roc")
    (plots / "pr.png").write_bytes(b"\x89PNG fake pr")
    report = tmp_path / "work" / "report.txt"
    report.write_text("auc 0.9\n")
    with mloop.start_run(experiment="arts") as run:
        run.log_artifact(plots)  # -> plots/ (a folder)
        run.log_artifact(report, "docs")  # -> docs/report.txt
        run.log_text("hello", "notes.txt")
        run.log_dict({"C": 1}, "config/params.json")
    return run.id, plots, report


def test_list_shows_direct_children_files_and_folders(logged_run):
    run_id, plots, report = logged_run
    top = mloop.artifacts.list(run_id)
    assert [(a["path"], a["is_dir"]) for a in top] == [
        ("config", True), ("docs", True), ("notes.txt", False), ("plots", True)]
    sizes = {a["path"]: a["size"] for a in top}
    assert sizes["plots"] == sum(len(b) for b in _tree(plots).values())
    assert sizes["notes.txt"] == 5
    by_path = {a["path"]: a for a in top}
    assert by_path["plots"]["digest"].startswith("blake3:")  # logged as a folder: its manifest
    assert by_path["docs"]["digest"] is None  # only a prefix of a logged file
    inner = mloop.artifacts.list(run_id, "plots")
    assert [(a["path"], a["is_dir"]) for a in inner] == [("plots/pr.png", False), ("plots/roc", True)]
    assert [a["path"] for a in mloop.artifacts.list(run_id, "plots/roc/")] == ["plots/roc/curve.png"]
    single = mloop.artifacts.list(run_id, "docs/report.txt")
    assert single == [{"path": "docs/report.txt", "is_dir": False, "size": report.stat().st_size,
                       "digest": mloop.artifacts.digest_of_file(report)}]


def test_download_files_folders_and_everything(logged_run, tmp_path):
    run_id, plots, report = logged_run
    out = tmp_path / "out"
    assert mloop.artifacts.download(run_id, "docs/report.txt", out).read_bytes() == report.read_bytes()
    got = mloop.artifacts.download(run_id, "plots", out)
    assert got == out / "plots" and _tree(got) == _tree(plots)
    sub = mloop.artifacts.download(run_id, "plots/roc", tmp_path / "sub")  # a folder inside a logged folder
    assert _tree(sub) == {"curve.png": b"\x89PNG fake roc"}
    inner_file = mloop.artifacts.download(run_id, "plots/roc/curve.png", tmp_path / "one")
    assert inner_file.read_bytes() == b"\x89PNG fake roc"
    everything = mloop.artifacts.download(run_id, "", tmp_path / "all")
    assert _tree(everything) == {
        "config/params.json": json.dumps({"C": 1}, indent=2).encode(),
        "docs/report.txt": report.read_bytes(),
        "notes.txt": b"hello",
        **{f"plots/{k}": v for k, v in _tree(plots).items()},
    }


def test_unknown_run_and_path_name_the_token(logged_run, tmp_path):
    run_id, _, _ = logged_run
    with pytest.raises(NotFound, match="no-such-run"):
        mloop.artifacts.list("no-such-run")
    with pytest.raises(NotFound, match="'plots/nope'"):
        mloop.artifacts.list(run_id, "plots/nope")
    with pytest.raises(NotFound, match="'missing.bin'"):
        mloop.artifacts.download(run_id, "missing.bin", tmp_path)
    assert not (tmp_path / "missing.bin").exists()


def test_cli_runs_artifacts_list_and_get(logged_run, tmp_path):
    run_id, plots, _ = logged_run
    listed = invoke_cli("runs", "artifacts", "list", run_id, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [a["path"] for a in json.loads(listed.stdout)] == ["config", "docs", "notes.txt", "plots"]
    inner = invoke_cli("runs", "artifacts", "list", run_id, "plots", "--json")
    assert [a["path"] for a in json.loads(inner.stdout)] == ["plots/pr.png", "plots/roc"]
    table = invoke_cli("runs", "artifacts", "list", run_id, "plots")
    assert table.returncode == 0 and "plots/roc/" in table.stdout and "plots/pr.png" in table.stdout
    got = run_cli("runs", "artifacts", "get", run_id, "plots", "--dest", str(tmp_path / "dl"))  # the real script
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == str(tmp_path / "dl" / "plots")
    assert _tree(tmp_path / "dl" / "plots") == _tree(plots)
    one = invoke_cli("runs", "artifacts", "get", run_id, "notes.txt", "-o", str(tmp_path / "dl"))
    assert one.returncode == 0 and (tmp_path / "dl" / "notes.txt").read_bytes() == b"hello"
    bad = invoke_cli("runs", "artifacts", "get", run_id, "nope.txt")
    assert bad.returncode == 2 and "'nope.txt'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
