"""`mloop validate` and `mloop suites ...`: exit 0 pass, 1 fail, 2 bad input; in-process CLI."""

from __future__ import annotations

import json

import pytest

from mloop.demo.data import generate_churn
from support import invoke_cli, run_cli


@pytest.fixture
def files(tmp_path):
    ref = generate_churn(1_500, seed=31)
    ref.to_parquet(tmp_path / "ref.parquet")
    bad = ref.copy()
    bad.loc[[4, 8], "monthly_charges"] = 10_000.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    return tmp_path


def test_init_validate_and_exit_codes(files):
    out = invoke_cli("suites", "init", "--reference", str(files / "ref.parquet"), "-o", str(files / "s.yaml"),
                     "--name", "churn")
    assert out.returncode == 0, out.stderr
    assert (files / "s.yaml").read_text().startswith("suite: churn")
    assert "stored suite churn@1" in out.stdout

    ok = invoke_cli("validate", str(files / "ref.csv"), "--suite", "churn")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok:" in ok.stdout

    bad = invoke_cli("validate", str(files / "bad.csv"), "--suite", str(files / "s.yaml"), "--json",
                     "--html", str(files / "report.html"))
    assert bad.returncode == 1
    data = json.loads(bad.stdout)
    failed = [r for r in data["results"] if r["status"] == "fail"]
    assert [r["name"] for r in failed] == ["between:monthly_charges"]
    assert [e["row"] for e in failed[0]["examples"]] == [4, 8]
    assert (files / "report.html").read_text().startswith("<!DOCTYPE html>")

    ref = invoke_cli("validate", str(files / "bad.csv"), "--reference", str(files / "ref.parquet"))
    assert ref.returncode == 1 and "between:monthly_charges" in ref.stdout


def test_bad_input_is_exit_2(files):
    missing = invoke_cli("validate", str(files / "nope.csv"), "--reference", str(files / "ref.parquet"))
    assert missing.returncode == 2 and "nope.csv" in missing.stderr and "no such file" in missing.stderr
    assert "no dataset named" not in missing.stderr
    unknown = invoke_cli("validate", str(files / "ref.csv"), "--suite", "nosuch")
    assert unknown.returncode == 2 and "no suite named 'nosuch'" in unknown.stderr
    both = invoke_cli("validate", str(files / "ref.csv"))
    assert both.returncode == 2 and "--suite" in both.stderr
    (files / "broken.yaml").write_text("expectations:\n  - type: betwen\n    column: x\n")
    broken = invoke_cli("validate", str(files / "ref.csv"), "--suite", str(files / "broken.yaml"))
    assert broken.returncode == 2 and "line 2" in broken.stderr and "betwen" in broken.stderr


def test_list_show_attach(files):
    assert invoke_cli("suites", "init", "-r", str(files / "ref.parquet"), "--name", "churn").returncode == 0
    assert invoke_cli("suites", "attach", "churn", "churn-train").returncode == 0
    listed = invoke_cli("suites", "list", "--json")
    assert json.loads(listed.stdout)[0]["datasets"] == ["churn-train"]
    shown = invoke_cli("suites", "show", "churn@1")
    assert shown.returncode == 0 and "# churn@1" in shown.stdout and "type: dtype" in shown.stdout
    assert invoke_cli("suites", "show", "churn@7").returncode == 2
    printed = invoke_cli("suites", "init", "-r", str(files / "ref.parquet"))
    assert printed.stdout.startswith("meta:") or "expectations:" in printed.stdout


def test_data_add_of_an_attached_dataset_exits_1(files):
    """Through the real console entry point: `mloop data add` validates and refuses (exit 1)."""
    assert invoke_cli("suites", "init", "-r", str(files / "ref.parquet"), "--name", "churn").returncode == 0
    assert invoke_cli("suites", "attach", "churn", "churn-train").returncode == 0
    refused = run_cli("data", "add", str(files / "bad.csv"), "--name", "churn-train")
    assert refused.returncode == 1, refused.stderr
    assert "between:monthly_charges" in refused.stderr
    forced = run_cli("data", "add", str(files / "bad.csv"), "--name", "churn-train", "--force")
    assert forced.returncode == 0, forced.stderr
