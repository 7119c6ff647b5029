"""Autologging on real scikit-learn, XGBoost and LightGBM fits: one run per outermost fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mloop


@pytest.fixture
def autolog():
    mloop.autolog()
    yield
    mloop.autolog(disable=True)


def _data(n=300):
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    return X, (X.a - X.b > 0).astype(int)


def test_sklearn_pipeline_fit_logs_one_run(autolog):
    X, y = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.5))]).fit(X, y)
    runs = mloop.search_runs()
    assert len(runs) == 1
    run = runs[0]
    assert run.params["clf__C"] == "0.5" and run.params["clf"] == "LogisticRegression"
    assert run.metrics["training_accuracy"] == pytest.approx(accuracy_score(y, pipe.predict(X)))
    model = mloop.models.load(f"runs:/{run.id}/model")
    np.testing.assert_array_equal(model.predict(X), pipe.predict(X))
    assert [c["name"] for c in model.signature.inputs] == ["a", "b", "c"]


def test_search_logs_only_the_outer_fit_into_the_active_run(autolog):
    X, y = _data()
    with mloop.start_run(experiment="auto") as run:
        GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    runs = mloop.search_runs(experiment="auto")
    assert [r.id for r in runs] == [run.id]
    assert "estimator" in runs[0].params and "training_score" in runs[0].metrics
    assert len(mloop.search_runs()) == 1


def test_xgboost_and_lightgbm_fits(autolog):
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    X, y = _data()
    with mloop.start_run(experiment="x") as run:
        clf = xgb.XGBClassifier(n_estimators=10, max_depth=2).fit(X, y)
    got = mloop.get_run(run.id)
    assert got.params["n_estimators"] == "10" and "training_roc_auc" in got.metrics
    loaded = mloop.models.load(f"runs:/{run.id}/model")
    assert loaded.flavor == "xgboost"
    np.testing.assert_allclose(loaded.predict_proba(X).to_numpy(), clf.predict_proba(X), rtol=1e-6)
    with mloop.start_run(experiment="l") as run:
        reg = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, X.a * 2)
    got = mloop.get_run(run.id)
    assert "training_r2" in got.metrics and got.params["n_estimators"] == "10"
    np.testing.assert_allclose(mloop.models.load(f"runs:/{run.id}/model").predict(X), reg.predict(X))


def test_disable_restores_fit():
    mloop.autolog()
    mloop.autolog(disable=True)
    X, y = _data()
    LogisticRegression().fit(X, y)
    assert len(mloop.search_runs()) == 0
