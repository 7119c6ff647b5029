"""Quality gates: thresholds, champion comparisons re-evaluated on the same data (checked against
sklearn.metrics), directions, no champion; a gate and steps.register inside a pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

import mloop
from mloop.errors import GateFailed, InvalidInput
from mloop.store.db import get_store
from mloop.store.lineage import LineageRepo

FEATURES = ["a", "b", "c"]


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X @ np.array([1.5, -1.0, 0.5]) + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return pd.DataFrame(X, columns=FEATURES).assign(y=y)


@pytest.fixture(scope="module")
def models():
    train = _data(400, 1)
    good = LogisticRegression().fit(train[FEATURES], train["y"])
    shuffled = train["y"].sample(frac=1.0, random_state=3).to_numpy()
    bad = LogisticRegression().fit(train[FEATURES], shuffled)  # weak: trained on shuffled labels
    return good, bad


@pytest.fixture
def valid():
    return _data(300, 2)


def _register(model, alias=None):
    mv = mloop.models.log_model(model, "churn", register=True, input_example=_data(5, 9)[FEATURES])
    if alias:
        mloop.models.set_alias("churn", alias, mv.version)
    return mv


def test_thresholds_pass_and_fail_with_a_table():
    report = mloop.gate({"accuracy": 0.91, "log_loss": 0.2}, require={"accuracy": ">= 0.9", "log_loss": "< 0.3"})
    assert report.passed and [c["verdict"] for c in report.criteria] == ["pass", "pass"]
    with pytest.raises(GateFailed) as info:
        mloop.gate({"accuracy": 0.85}, require={"accuracy": ">= 0.9"})
    text = str(info.value)
    assert "criterion" in text and "candidate" in text and "champion" in text and "verdict" in text
    assert "accuracy >= 0.9" in text and "0.8500" in text and "fail" in text
    with pytest.raises(InvalidInput, match="must be like '>= 0.8'"):
        mloop.gate({"accuracy": 0.9}, require={"accuracy": "at least 0.9"})
    with pytest.raises(InvalidInput, match="do not have"):
        mloop.gate({"accuracy": 0.9}, require={"roc_auc": ">= 0.5"})


def test_candidate_and_champion_are_both_evaluated_on_the_same_data(models, valid):
    good, bad = models
    _register(bad, alias="champion")
    report = mloop.gate(require={"roc_auc": ">= 0.7"}, compare_to="churn@champion", candidate=good, eval_data=valid,
                        target="y", max_regression={"roc_auc": 0.0, "log_loss": 0.0})
    assert report.passed and report.champion == "models:/churn/1"
    y = valid["y"]
    cand_p = good.predict_proba(valid[FEATURES])[:, 1]
    champ_p = bad.predict_proba(valid[FEATURES])[:, 1]
    assert report.candidate_metrics["roc_auc"] == pytest.approx(roc_auc_score(y, cand_p))
    assert report.champion_metrics["roc_auc"] == pytest.approx(roc_auc_score(y, champ_p))
    assert report.champion_metrics["log_loss"] == pytest.approx(log_loss(y, champ_p))
    assert report.candidate_metrics["accuracy"] == pytest.approx(accuracy_score(y, cand_p > 0.5))

    _register(good, alias="champion")  # now the champion is better than the weak candidate
    with pytest.raises(GateFailed) as info:
        mloop.gate(compare_to="churn@champion", candidate=bad, eval_data=valid, target="y",
                   max_regression={"roc_auc": 0.01})
    report = info.value.report
    (criterion,) = report.criteria
    assert criterion["verdict"] == "fail" and criterion["champion"] == pytest.approx(roc_auc_score(y, cand_p))
    assert "roc_auc vs champion" in str(info.value) and report.champion == "models:/churn/2"


def test_max_regression_is_an_absolute_tolerance_and_directions(models, valid):
    good, _ = models
    _register(good, alias="champion")
    few = _data(400, 1).iloc[:30]
    slightly_worse = LogisticRegression().fit(few[FEATURES], few["y"])  # fewer rows: a little worse
    champ = roc_auc_score(valid["y"], good.predict_proba(valid[FEATURES])[:, 1])
    cand = roc_auc_score(valid["y"], slightly_worse.predict_proba(valid[FEATURES])[:, 1])
    gap = champ - cand
    assert gap > 0
    ok = mloop.gate(compare_to="churn@champion", candidate=slightly_worse, eval_data=valid, target="y",
                    max_regression={"roc_auc": gap + 1e-6})
    assert ok.passed
    with pytest.raises(GateFailed):
        mloop.gate(compare_to="churn@champion", candidate=slightly_worse, eval_data=valid, target="y",
                   max_regression={"roc_auc": gap / 2})
    with pytest.raises(InvalidInput, match="direction is unknown"):
        mloop.gate({"lift": 2.0}, compare_to="churn@champion", candidate=good, eval_data=valid, target="y",
                   max_regression={"lift": 0.1})
    with pytest.raises(InvalidInput, match="needs candidate= .* and eval_data="):
        mloop.gate({"roc_auc": 0.9}, compare_to="churn@champion", max_regression={"roc_auc": 0.1})


def test_no_champion_passes_and_says_so(models, valid):
    good, _ = models
    report = mloop.gate(compare_to="churn@champion", candidate=good, eval_data=valid, target="y",
                        max_regression={"roc_auc": 0.0})
    assert report.passed and report.champion_missing and report.champion is None
    assert "no champion 'churn@champion' yet" in report.table()


@mloop.step
def load(seed: int, n: int):
    return _data(n, seed)


@mloop.step
def fit(df, C: float, shuffle: bool):
    y = df["y"].sample(frac=1.0, random_state=1).to_numpy() if shuffle else df["y"]
    return LogisticRegression(C=C).fit(df[FEATURES], y)


@mloop.pipeline(name="gated-training")
def gated_training(C: float = 1.0, shuffle: bool = False):
    train, valid = load(1, 400), load(2, 300)
    model = fit(train, C, shuffle)
    report = mloop.gate(require={"roc_auc": ">= 0.7"}, compare_to="churn@champion", candidate=model,
                        eval_data=valid, target="y", max_regression={"roc_auc": 0.01})
    return {"report": report, "registered": mloop.steps.register(model, name="churn", alias="challenger")}


def test_gate_and_register_steps_in_a_pipeline(models):
    _, bad = models
    _register(bad, alias="champion")
    run = gated_training.run(C=1.0)
    assert run.status == "COMPLETED"
    model_out = run.step("fit").outputs["output"]
    assert model_out["kind"] == "model" and model_out["flavor"] == "sklearn"  # saved by the registry's flavor
    registered = run.outputs["registered"]
    assert registered["uri"] == "models:/churn/2" and registered["aliases"] == ["challenger"]
    assert mloop.models.get("churn@challenger").version == 2
    assert run.outputs["report"]["champion"] == "models:/churn/1" and run.gates[0]["passed"]
    edges = LineageRepo(get_store()).edges(("pipeline_run", run.id), "out")
    assert [(e.relation, e.to_id) for e in edges] == [("produced", "churn/2")]

    again = gated_training.run(C=1.0)
    assert set(again.cached_steps) == {s.name for s in again.steps}  # fully cached, same champion

    with pytest.raises(GateFailed, match="roc_auc >= 0.7"):
        gated_training.run(shuffle=True)  # a model trained on shuffled labels fails the gate
