"""Every flavor round-trips: predictions of the loaded model equal the original's on held-out data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mloop


def _data(n=600, seed=1, classes=2):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"f{i}" for i in range(5)])
    score = X.f0 + 0.5 * X.f1 - 0.3 * X.f2 + rng.normal(scale=0.3, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, pd.Series(y, name="y"), score


def test_xgboost_classifier_and_regressor():
    xgb = pytest.importorskip("xgboost")
    X, y, score = _data(classes=3)
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(X[:400], y[:400])
    mv = mloop.models.log_model(clf, "xgb-clf", input_example=X.head(), register=True)
    assert mv.flavor == "xgboost" and mv.manifest["flavor_options"]["file"] == "model.ubj"
    model = mloop.models.load("xgb-clf/1")
    held = X[400:]
    np.testing.assert_array_equal(model.predict(held), clf.predict(held))
    np.testing.assert_allclose(model.predict_proba(held).to_numpy(), clf.predict_proba(held), rtol=1e-6)
    assert model.classes == [0, 1, 2]
    reg = xgb.XGBRegressor(n_estimators=20).fit(X[:400], score[:400])
    mloop.models.log_model(reg, "xgb-reg", input_example=X.head(), register=True)
    loaded = mloop.models.load("xgb-reg@latest")
    assert loaded.task == "regression"
    np.testing.assert_allclose(loaded.predict(held), reg.predict(held), rtol=1e-6)
    booster = clf.get_booster()
    mloop.models.log_model(booster, "xgb-booster", input_example=X.head(), register=True)
    np.testing.assert_allclose(mloop.models.load("xgb-booster/1").predict_proba(held).to_numpy(),
                               clf.predict_proba(held), rtol=1e-6)


def test_lightgbm_classifier_with_string_labels_and_regressor():
    lgb = pytest.importorskip("lightgbm")
    X, y, score = _data()
    labels = np.where(y == 1, "churn", "stay")
    clf = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(X[:400], labels[:400])
    mv = mloop.models.log_model(clf, "lgb-clf", input_example=X.head(), register=True)
    assert mv.flavor == "lightgbm" and mv.manifest["classes"] == ["churn", "stay"]
    model = mloop.models.load("lgb-clf/1")
    held = X[400:]
    np.testing.assert_array_equal(model.predict(held), clf.predict(held))
    np.testing.assert_allclose(model.predict_proba(held).to_numpy(), clf.predict_proba(held))
    assert list(model.predict_proba(held).columns) == ["proba_churn", "proba_stay"]
    reg = lgb.LGBMRegressor(n_estimators=20, verbose=-1).fit(X[:400], score[:400])
    mloop.models.log_model(reg, "lgb-reg", input_example=X.head(), register=True)
    np.testing.assert_allclose(mloop.models.load("lgb-reg/1").predict(held), reg.predict(held))


def test_onnx_classifier_from_skl2onnx():
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    X, y, _ = _data()
    lr = LogisticRegression().fit(X[:400], y[:400])
    onx = skl2onnx.convert_sklearn(lr, initial_types=[("input", FloatTensorType([None, 5]))],
                                   options={id(lr): {"zipmap": False}})
    mv = mloop.models.log_model(onx, "onnx-lr", input_example=X.head(), register=True)
    assert mv.flavor == "onnx" and mv.task == "classification" and mv.manifest["classes"] == [0, 1]
    model = mloop.models.load("onnx-lr/1")
    held = X[400:]
    np.testing.assert_array_equal(model.predict(held), lr.predict(held))
    np.testing.assert_allclose(model.predict_proba(held).to_numpy(), lr.predict_proba(held), atol=1e-5)
    zipped = skl2onnx.convert_sklearn(lr, initial_types=[("input", FloatTensorType([None, 5]))])
    mloop.models.log_model(zipped, "onnx-zip", input_example=X.head(), register=True)
    np.testing.assert_allclose(mloop.models.load("onnx-zip/1").predict_proba(held).to_numpy(),
                               lr.predict_proba(held), atol=1e-5)


def test_onnx_regressor():
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import Ridge

    X, _, score = _data()
    ridge = Ridge().fit(X[:400], score[:400])
    onx = skl2onnx.convert_sklearn(ridge, initial_types=[("input", FloatTensorType([None, 5]))])
    mv = mloop.models.log_model(onx, "onnx-ridge", input_example=X.head(), register=True)
    assert mv.task == "regression"
    np.testing.assert_allclose(mloop.models.load("onnx-ridge/1").predict(X[400:]), ridge.predict(X[400:]), atol=1e-4)


class Thresholder:
    classes = ["no", "yes"]

    def __init__(self):
        self.cut = None

    def load(self, context):  # noqa: ANN001
        self.cut = float((context.path / "mloop-model.yaml").exists())

    def predict_proba(self, df):  # noqa: ANN001
        p = 1 / (1 + np.exp(-df["f0"].to_numpy()))
        return np.column_stack([1 - p, p])

    def predict(self, df):  # noqa: ANN001
        return np.where(self.predict_proba(df)[:, 1] > 0.5, "yes", "no")


def test_pyfunc_round_trip_with_load_context():
    X, _, _ = _data()
    obj = Thresholder()
    mv = mloop.models.log_model(obj, "pyf", input_example=X.head(), register=True)
    assert mv.flavor == "pyfunc" and mv.task == "classification"
    model = mloop.models.load("pyf/1", trust=True)
    assert model.native.cut == 1.0
    np.testing.assert_array_equal(model.predict(X), obj.predict(X))
    np.testing.assert_allclose(model.predict_proba(X).to_numpy(), obj.predict_proba(X))


def test_missing_flavor_library_names_package(monkeypatch):
    import builtins

    monkeypatch.setenv("MLOOP_MODEL_CACHE", "0")  # the skops path

    from sklearn.linear_model import LinearRegression

    X, _, score = _data()
    mloop.models.log_model(LinearRegression().fit(X, score), "lin", input_example=X.head(), register=True)
    mloop.models.clear_cache()
    real = builtins.__import__

    def no_skops(name, *args, **kwargs):  # noqa: ANN001
        if name.startswith("skops"):
            raise ImportError("No module named 'skops'", name="skops")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_skops)
    with pytest.raises(mloop.errors.MissingDependency, match=r"needs skops \d.*pip install 'skops==\d"):
        mloop.models.load("lin/1")
