"""Signature inference, enforcement and MLflow-style coercion; evaluate against sklearn.metrics."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

import mloop
from mloop.errors import InvalidInput
from mloop.registry.signature import Enforcer, infer


def test_infer_names_dtypes_nullability():
    df = pd.DataFrame({"i": [1, 2], "f": [1.0, np.nan], "s": ["a", None], "b": [True, False],
                       "t": pd.to_datetime(["2026-01-01", "2026-01-02"]), "c": pd.Categorical(["x", "y"])})
    sig = infer(df)
    assert [(c["name"], c["dtype"], c["nullable"]) for c in sig.inputs] == [
        ("i", "int64", False), ("f", "float64", True), ("s", "string", True), ("b", "bool", False),
        ("t", "datetime", False), ("c", "category", False)]


def test_enforcement_and_coercion_rules():
    sig = infer(pd.DataFrame({"i": [1, 2], "f": [1.5, 2.5], "s": ["a", "b"]}))
    enforce = Enforcer(sig, "model 'm/1'")
    out = enforce(pd.DataFrame({"s": ["x"], "f": [3], "i": [4.0]}))
    assert list(out.columns) == ["i", "f", "s"]
    assert out["f"].dtype == "float64" and out["i"].dtype == "int64" and out["i"].iloc[0] == 4
    out = enforce(pd.DataFrame({"i": np.array([1], dtype="int32"), "f": [1.0], "s": ["a"]}))
    assert out["i"].dtype == "int64"
    with pytest.raises(InvalidInput, match=r"column 'i' expects int64 but got a non-integral float \(1\.5\)"):
        enforce(pd.DataFrame({"i": [1.5], "f": [1.0], "s": ["a"]}))
    with pytest.raises(InvalidInput, match=r"column 'i' expects int64 but has missing values"):
        enforce(pd.DataFrame({"i": [np.nan], "f": [1.0], "s": ["a"]}))
    with pytest.raises(InvalidInput, match=r"column 'f' expects float64 .*strings are never converted"):
        enforce(pd.DataFrame({"i": [1], "f": ["1.0"], "s": ["a"]}))
    with pytest.raises(InvalidInput, match=r"column 's' expects string"):
        enforce(pd.DataFrame({"i": [1], "f": [1.0], "s": [3]}))
    with pytest.raises(InvalidInput, match=r"missing column\(s\) f \(float64\)"):
        enforce(pd.DataFrame({"i": [1], "s": ["a"]}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enforce(pd.DataFrame({"i": [1], "f": [1.0], "s": ["a"], "extra": [0]}))
        enforce(pd.DataFrame({"i": [1], "f": [1.0], "s": ["a"], "extra": [0]}))
    assert len([w for w in caught if issubclass(w.category, mloop.models.ExtraColumnsWarning)]) == 1


def test_inputs_from_polars_arrow_and_records():
    import pyarrow as pa

    X = pd.DataFrame({"a": [0.1, 0.9, 0.4, 0.8], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 1, 0, 1]
    mloop.models.log_model(LogisticRegression().fit(X, y), "lr", input_example=X, register=True)
    model = mloop.models.load("lr/1")
    expected = model.predict(X)
    np.testing.assert_array_equal(model.predict(pa.Table.from_pandas(X)), expected)
    np.testing.assert_array_equal(model.predict(X.to_dict(orient="records")), expected)
    polars = pytest.importorskip("polars")
    np.testing.assert_array_equal(model.predict(polars.from_pandas(X)), expected)


def _clf_data(classes=2, n=500, seed=3):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    score = X.a - X.b + rng.normal(scale=0.8, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, y


@pytest.mark.parametrize("classes", [2, 3])
def test_evaluate_classification_matches_sklearn(classes):
    X, y = _clf_data(classes)
    lr = LogisticRegression().fit(X[:300], y[:300])
    Xv, yv = X[300:], y[300:]
    got = mloop.evaluate(lr, Xv.assign(target=yv), "target")
    proba = lr.predict_proba(Xv)
    pred = lr.classes_[proba.argmax(axis=1)]
    avg = {"average": "binary"} if classes == 2 else {"average": "macro"}
    want = {"accuracy": skm.accuracy_score(yv, pred), "precision": skm.precision_score(yv, pred, **avg),
            "recall": skm.recall_score(yv, pred, **avg), "f1": skm.f1_score(yv, pred, **avg),
            "roc_auc": skm.roc_auc_score(yv, proba[:, 1]) if classes == 2 else
            skm.roc_auc_score(yv, proba, multi_class="ovr"), "log_loss": skm.log_loss(yv, proba)}
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key


def test_evaluate_regression_matches_sklearn_and_logs_in_a_run():
    from mloop.tracking import artifacts

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    y = 3 + 2 * X.a - X.b + rng.normal(scale=0.5, size=300)
    lin = LinearRegression().fit(X, y)
    mloop.models.log_model(lin, "lin", input_example=X.head(), register=True)
    pred = lin.predict(X)
    with mloop.start_run(experiment="eval") as run:
        got = mloop.evaluate("lin/1", X.assign(y=y), "y")
    assert got == pytest.approx({"mae": skm.mean_absolute_error(y, pred),
                                 "rmse": math.sqrt(skm.mean_squared_error(y, pred)),
                                 "r2": skm.r2_score(y, pred), "mape": skm.mean_absolute_percentage_error(y, pred)})
    assert mloop.get_run(run.id).metrics["r2"] == pytest.approx(got["r2"])
    paths = {a["path"] for a in artifacts.list(run.id, "evaluation")}
    assert {"evaluation/residuals.png", "evaluation/metrics.json"} <= paths


def test_evaluate_logs_classification_plots():
    from mloop.tracking import artifacts

    X, y = _clf_data()
    lr = LogisticRegression().fit(X, y)
    with mloop.start_run(experiment="eval") as run:
        mloop.evaluate(lr, X.assign(t=y), "t")
    paths = {a["path"] for a in artifacts.list(run.id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/roc_curve.png",
            "evaluation/calibration_curve.png"} <= paths


def test_model_fitted_on_a_bare_array():
    import warnings as w

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    mv = mloop.models.log_model(lr, "arr", input_example=X[:5], register=True)
    assert [c["name"] for c in mv.signature.inputs] == ["0", "1", "2"]
    model = mloop.models.load("arr/1")
    with w.catch_warnings():
        w.simplefilter("error")
        np.testing.assert_array_equal(model.predict(X), lr.predict(X))
        np.testing.assert_array_equal(model.predict(pd.DataFrame(X, columns=["0", "1", "2"])), lr.predict(X))
