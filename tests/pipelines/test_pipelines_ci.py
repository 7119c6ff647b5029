"""`mloop ci`: exit codes (0 pass, 1 gate/validation failed, 2 bad input or no champion, 3 crash),
the Markdown report, $GITHUB_STEP_SUMMARY, declared dataset inputs; `mloop init --ci github`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

import mloop
from mloop.store.db import get_store
from mloop.store.lineage import LineageRepo
from support import invoke_cli

PIPELINE = '''
import mloop
from sklearn.linear_model import LogisticRegression

FEATURES = ["a", "b", "c"]


@mloop.step
def load(data: str):
    return mloop.data.use(data).to_pandas()


@mloop.step(outputs=("train", "valid"))
def split(df):
    return df.iloc[:300], df.iloc[300:]


@mloop.step
def fit(train, C: float, shuffle: bool):
    y = train["y"].sample(frac=1.0, random_state=1).to_numpy() if shuffle else train["y"]
    return LogisticRegression(C=C).fit(train[FEATURES], y)


@mloop.step
def crash(model, boom: bool):
    if boom:
        raise RuntimeError("kaboom")
    return True


@mloop.pipeline(name="ci-flow")
def flow(data: mloop.DatasetRef = "ci-data@latest", C: float = 1.0, shuffle: bool = False, boom: bool = False):
    df = load(data)
    train, valid = split(df)
    model = fit(train, C, shuffle)
    report = mloop.gate(require={"roc_auc": ">= 0.7"}, compare_to="ci-model@champion", candidate=model,
                        eval_data=valid, target="y", max_regression={"roc_auc": 0.02})
    crash(model, boom)
    return mloop.steps.register(model, name="ci-model", alias="challenger", gate=report)
'''


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X @ np.array([1.5, -1.0, 0.5]) + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    dv = mloop.data.add(_frame(450, 1), name="ci-data")
    return dv


@pytest.fixture
def project_on(tracking_uri, tmp_path):
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    mloop.data.add(_frame(450, 1), name="ci-data")
    return tracking_uri


def test_ci_exit_codes_report_and_promotion(project_on, tmp_path, monkeypatch):
    from mloop.store.db import redact

    # no champion and no --first-model: bad input naming the store, and nothing runs
    res = invoke_cli("ci")
    assert res.returncode == 2, res.stderr
    assert "no champion 'ci-model@champion'" in res.stderr and redact(project_on) in res.stderr
    assert mloop.pipelines.list_runs() == []

    res = invoke_cli("ci", "--first-model", "--promote", "-p", "C=1.0")
    assert res.returncode == 0, res.stderr
    report = (tmp_path / "mloop-ci-report.md").read_text()
    assert "✅ passed" in report and "no champion 'ci-model@champion' yet" in report
    assert "## Steps" in report and "| register | COMPLETED" in report
    assert "`models:/ci-model/1` is now `@champion`" in report
    assert mloop.models.get("ci-model@champion").version == 1
    run = mloop.pipelines.list_runs()[0]
    assert run["inputs"] == {"data": "datasets:/ci-data@1"}       # the declared input, pinned
    edges = LineageRepo(get_store()).edges(("dataset_version", "ci-data/1"), "out")
    assert {("input", e.to_kind, e.to_id) for e in edges} >= {("input", "run", run["id"]),
                                                                ("input", "pipeline_run", run["id"])}

    # a worse candidate against the champion: exit 1, candidate vs champion with deltas
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    res = invoke_cli("ci", "-p", "shuffle=true")
    assert res.returncode == 1, res.stderr
    text = summary.read_text()
    assert "❌ failed" in text and "champion `ci-model@champion` (`models:/ci-model/1`)" in text
    assert "| metric | candidate | champion | delta |" in text and "| roc_auc |" in text
    assert "| register | SKIPPED" in text
    assert mloop.models.get("ci-model@champion").version == 1       # not promoted

    assert invoke_cli("ci", "-p", "boom=true").returncode == 3      # a step crashed
    assert "kaboom" in summary.read_text()
    assert invoke_cli("ci", "-p", "C=abc").returncode == 2          # bad input
    assert invoke_cli("ci", "--pipeline", "missing.py").returncode == 2


def test_ci_validates_declared_inputs_first(project, tmp_path):
    from mloop import validation

    suite = validation.infer_suite(_frame(450, 1))
    validation.save_suite(suite, "ci-suite")
    validation.attach("ci-suite", "ci-data")
    broken = _frame(450, 2).assign(a=lambda d: d["a"] * 1000)       # far outside the reference range
    mloop.data.add(broken, name="ci-data", force=True)
    res = invoke_cli("ci", "--first-model", "--report", "out/ci.md")
    assert res.returncode == 1, res.stderr
    text = (tmp_path / "out" / "ci.md").read_text()
    assert "## Validation of input datasets" in text and "`datasets:/ci-data@2`" in text and "❌ fail" in text
    assert mloop.pipelines.list_runs() == []                        # the pipeline did not run
    ok = invoke_cli("ci", "--first-model", "-p", "data=ci-data@1", "--report", "out/ok.md")
    assert ok.returncode == 0, ok.stderr
    assert "✅ pass" in (tmp_path / "out" / "ok.md").read_text()


def test_init_writes_a_github_workflow_that_runs_ci(tmp_path):
    res = invoke_cli("init", "--ci", "github", str(tmp_path))
    assert res.returncode == 0, res.stderr
    workflow = yaml.safe_load((tmp_path / ".github" / "workflows" / "mloop.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert set(triggers) == {"push", "pull_request"}
    job = workflow["jobs"]["ci"]
    assert job["env"]["MLOOP_TRACKING_URI"] == "${{ secrets.MLOOP_TRACKING_URI }}"
    assert job["env"]["MLOOP_ARTIFACT_URI"] == "${{ secrets.MLOOP_ARTIFACT_URI }}"
    uses = [s.get("uses", "") for s in job["steps"]]
    runs = [s.get("run", "") for s in job["steps"]]
    assert any(u.startswith("actions/checkout@") for u in uses) and any(u.startswith("actions/setup-python@") for u in uses)
    assert any("pip install" in r and "mloop" in r for r in runs)
    assert any(r.strip().startswith("mloop ci") for r in runs)
    assert invoke_cli("init", "--ci", "gitlab", str(tmp_path)).returncode == 2
