"""The `mloop` command: help everywhere, lists and shows with --json, compare, delete/restore,
lineage, and DESIGN.md's exit codes (2 with a one-line reason, 3 with a traceback file)."""

from __future__ import annotations

import json
import math

import pytest
import typer

import mloop
from support import invoke_cli, run_cli


@pytest.fixture
def runs():
    """Four runs in two experiments, with known params and latest metrics."""
    made = {}
    for name, C, auc, exp in [("a", 0.1, 0.71, "churn"), ("b", 1.0, 0.93, "churn"), ("c", 10.0, 0.85, "churn"),
                              ("d", 1.0, 0.5, "other")]:
        with mloop.start_run(experiment=exp, name=name, params={"C": C, "solver": "lbfgs"}) as run:
            run.log_metric("auc", auc - 0.1, step=1)
            run.log_metric("auc", auc, step=2)
            run.set_tags({"team": "growth" if name != "c" else "risk"})
        made[name] = run.id
    return made


def _commands(group, prefix: tuple[str, ...] = ()):  # noqa: ANN001
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name)
        if hasattr(cmd, "commands"):  # a group (typer vendors click, so no isinstance check)
            yield from _commands(cmd, (*prefix, name))


def test_top_level_help_in_a_subprocess():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for group in ("init", "demo", "lineage", "experiments", "runs"):
        assert group in proc.stdout


def test_every_command_has_help():
    from mloop.cli import _build

    root = typer.main.get_command(_build())
    paths = list(_commands(root))
    assert ("runs", "artifacts", "get") in paths and ("experiments", "list") in paths
    for path in paths:
        result = invoke_cli(*path, "--help")
        assert result.returncode == 0, f"mloop {' '.join(path)} --help: {result.stderr}"
        assert "Usage:" in result.stdout and "--help" in result.stdout


def test_experiments_list_json_and_table(runs):
    result = invoke_cli("experiments", "list", "--json")
    assert result.returncode == 0, result.stderr
    names = {e["name"] for e in json.loads(result.stdout)}
    assert {"churn", "other"} <= names
    table = invoke_cli("experiments", "list")
    assert "churn" in table.stdout and "other" in table.stdout


def test_runs_list_filters_orders_and_limits(runs):
    result = invoke_cli("runs", "list", "--experiment", "churn", "--filter", "metrics.auc > 0.8",
                        "--order-by", "metrics.auc DESC", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert [r["id"] for r in got] == [runs["b"], runs["c"]]
    assert got[0]["metrics"]["auc"] == pytest.approx(0.93)  # the latest step, not the first
    assert got[0]["params"] == {"C": "1.0", "solver": "lbfgs"}
    limited = json.loads(invoke_cli("runs", "list", "--order-by", "metrics.auc ASC", "--limit", "2",
                                    "--json").stdout)
    assert [r["id"] for r in limited] == [runs["d"], runs["a"]]
    tagged = json.loads(invoke_cli("runs", "list", "-f", "tags.team = 'risk' and params.C = '10.0'",
                                   "--json").stdout)
    assert [r["id"] for r in tagged] == [runs["c"]]
    both = json.loads(invoke_cli("runs", "list", "-e", "churn", "-e", "other", "--json").stdout)
    assert {r["id"] for r in both} == set(runs.values())
    table = invoke_cli("runs", "list", "--experiment", "churn")
    assert table.returncode == 0 and all(runs[n] in table.stdout for n in "abc") and runs["d"] not in table.stdout


def test_runs_show_json_and_table(runs):
    result = invoke_cli("runs", "show", runs["b"], "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["id"], data["name"], data["experiment"], data["status"]) == (runs["b"], "b", "churn", "FINISHED")
    assert data["params"]["C"] == "1.0" and data["tags"]["team"] == "growth"
    assert data["metrics"]["auc"] == pytest.approx(0.93)
    assert "python" in data["environment"]
    table = invoke_cli("runs", "show", runs["b"])
    assert "params.C" in table.stdout and "metrics.auc" in table.stdout and "FINISHED" in table.stdout


def test_nan_and_inf_metrics_are_shown_as_such():
    with mloop.start_run(experiment="odd") as run:
        run.log_metrics({"loss": math.nan, "ratio": math.inf, "neg": -math.inf})
    data = json.loads(invoke_cli("runs", "show", run.id, "--json").stdout)
    assert data["metrics"] == {"loss": "NaN", "ratio": "Infinity", "neg": "-Infinity"}
    table = invoke_cli("runs", "show", run.id).stdout
    assert "nan" in table and "inf" in table and "-inf" in table


def test_runs_compare_marks_differences(runs):
    result = invoke_cli("runs", "compare", runs["a"], runs["b"], runs["d"], "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [r["id"] for r in data["runs"]] == [runs["a"], runs["b"], runs["d"]]
    rows = {r["key"]: r for r in data["rows"]}
    assert set(rows) == {"params.C", "params.solver", "metrics.auc"}
    assert rows["params.C"]["values"] == {runs["a"]: "0.1", runs["b"]: "1.0", runs["d"]: "1.0"}
    assert rows["params.C"]["differs"] is True
    assert rows["params.solver"]["differs"] is False
    assert rows["metrics.auc"]["differs"] is True
    assert rows["metrics.auc"]["values"][runs["b"]] == pytest.approx(0.93)
    same = json.loads(invoke_cli("runs", "compare", runs["b"], runs["d"], "--json").stdout)
    assert {r["key"]: r["differs"] for r in same["rows"]} == {
        "params.C": False, "params.solver": False, "metrics.auc": True}
    table = invoke_cli("runs", "compare", runs["a"], runs["b"]).stdout
    assert "params.C *" in table and "params.solver *" not in table
    assert invoke_cli("runs", "compare", runs["a"]).returncode == 2


def test_runs_delete_and_restore(runs):
    assert invoke_cli("runs", "delete", runs["a"]).returncode == 0
    listed = [r["id"] for r in json.loads(invoke_cli("runs", "list", "--json").stdout)]
    assert runs["a"] not in listed and runs["b"] in listed
    with_deleted = [r["id"] for r in json.loads(invoke_cli("runs", "list", "--all", "--json").stdout)]
    assert runs["a"] in with_deleted
    assert invoke_cli("runs", "restore", runs["a"]).returncode == 0
    assert runs["a"] in [r["id"] for r in json.loads(invoke_cli("runs", "list", "--json").stdout)]


def test_lineage_of_a_run(runs):
    from mloop.store import get_store
    from mloop.store.lineage import LineageRepo

    LineageRepo(get_store()).add(("dataset_version", "churn-train/1"), "input", ("run", runs["b"]))
    LineageRepo(get_store()).add(("run", runs["b"]), "produced", ("model_version", "churn/1"))
    result = invoke_cli("lineage", f"runs:/{runs['b']}", "--json")
    assert result.returncode == 0, result.stderr
    edges = {(e["from_kind"], e["from_id"], e["relation"], e["to_kind"], e["to_id"]) for e in json.loads(result.stdout)}
    assert edges == {("dataset_version", "churn-train/1", "input", "run", runs["b"]),
                     ("run", runs["b"], "produced", "model_version", "churn/1")}
    up = json.loads(invoke_cli("lineage", f"runs:/{runs['b']}", "--direction", "up", "--json").stdout)
    assert [e["relation"] for e in up] == ["input"]
    table = invoke_cli("lineage", f"runs:/{runs['b']}").stdout
    assert "churn-train/1" in table and "produced" in table
    assert json.loads(invoke_cli("lineage", f"runs:/{runs['a']}", "--json").stdout) == []


def _one_line_error(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_unknown_run_exits_2_naming_it():
    proc = run_cli("runs", "show", "0123456789abcdef0123456789abcdef")
    assert proc.returncode == 2
    assert "0123456789abcdef0123456789abcdef" in _one_line_error(proc)
    assert "Traceback" not in proc.stderr


def test_bad_filter_exits_2_naming_the_token():
    proc = run_cli("runs", "list", "--filter", "metrics.auc > 0.5 and colour.x = 1")
    assert proc.returncode == 2
    assert "colour" in _one_line_error(proc)
    for bad, token in [("metrics.auc >> 1", ">"), ("params.C = ", "="), ("metrics.auc ~ 1", "~")]:
        result = invoke_cli("runs", "list", "--filter", bad)
        assert result.returncode == 2, bad
        assert token in result.stderr and len(result.stderr.strip().splitlines()) == 1
    for bad, token in [("metrics.auc SIDEWAYS", "SIDEWAYS"), ("colour.x DESC", "colour")]:
        result = invoke_cli("runs", "list", "--order-by", bad)
        assert result.returncode == 2 and token in result.stderr, bad


def test_unknown_experiment_and_bad_usage_exit_2():
    result = invoke_cli("runs", "list", "--experiment", "nope-exp")
    assert result.returncode == 2 and "nope-exp" in result.stderr
    assert invoke_cli("runs", "list", "--limit", "zero").returncode == 2
    assert invoke_cli("no-such-command").returncode == 2


def test_runtime_failure_exits_3_with_a_traceback_file(mloop_home):
    # the metadata store is unreachable: a runtime failure, not bad input
    proc = run_cli("runs", "list", env={"MLOOP_TRACKING_URI": "postgresql+psycopg://postgres@127.0.0.1:1/none"})
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and "traceback in" in lines[1]
    logs = list((mloop_home / "logs").glob("*.log"))
    assert len(logs) == 1 and str(logs[0]) in lines[1]
    assert "Traceback (most recent call last)" in logs[0].read_text()


def test_corrupt_blob_exits_3(tmp_path, mloop_home):
    from mloop.artifacts import get_blob_store

    with mloop.start_run(experiment="x") as run:
        run.log_text("precious", "notes.txt")
    digest = mloop.artifacts.list(run.id)[0]["digest"]
    get_blob_store().local_path(digest).write_bytes(b"bit rot")
    result = invoke_cli("runs", "artifacts", "get", run.id, "notes.txt", "-o", str(tmp_path / "out"))
    assert result.returncode == 3 and "does not match its digest" in result.stderr
    assert not (tmp_path / "out" / "notes.txt").exists()
    assert len(list((mloop_home / "logs").glob("*.log"))) == 1


def test_experiments_delete_and_restore(runs):
    assert invoke_cli("experiments", "delete", "other").returncode == 0
    names = {e["name"] for e in json.loads(invoke_cli("experiments", "list", "--json").stdout)}
    assert "other" not in names and "churn" in names
    every = {e["name"]: e for e in json.loads(invoke_cli("experiments", "list", "--all", "--json").stdout)}
    assert every["other"]["lifecycle_stage"] == "deleted"
    assert invoke_cli("experiments", "restore", "other").returncode == 0
    assert "other" in {e["name"] for e in json.loads(invoke_cli("experiments", "list", "--json").stdout)}
    missing = invoke_cli("experiments", "delete", "never-made")
    assert missing.returncode == 2 and "never-made" in missing.stderr


def test_lineage_of_an_unknown_run_or_uri_exits_2():
    result = invoke_cli("lineage", "runs:/feedfacefeedfacefeedfacefeedface")
    assert result.returncode == 2 and "feedfacefeedfacefeedfacefeedface" in result.stderr
    bad = invoke_cli("lineage", "what-is-this")
    assert bad.returncode == 2 and "'what-is-this'" in bad.stderr
