"""The ONNX fast path (exact conversions served by onnxruntime, the rest falling back with a reason)
and the input-resolver hook."""

from __future__ import annotations

import logging

import httpx
import numpy as np
import pytest
from serving_helpers import FEATURES, NUMERIC, ServerThread, churn_frame, register, register_numeric

import mloop
from mloop.errors import InvalidInput
from mloop.serving import create_app


def test_onnx_fast_path_matches_native(churn_df):
    mv, pipe = register("churn", churn_df, alias="champion")
    rows = churn_df.head(50)
    ref = pipe.predict_proba(rows[FEATURES])
    app = create_app("churn@champion", onnx=True, reload_interval=0)
    assert app.state.serving.champion.onnx is not None
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/v2/models/churn").json()["parameters"]["onnx"] is True
        doc = c.post("/predict", json=rows[FEATURES].to_dict("records")).json()
    got = np.array([[p["0"], p["1"]] for p in doc["probabilities"]])
    assert np.max(np.abs(got - ref)) <= 1e-5
    assert doc["predictions"] == pipe.classes_[ref.argmax(axis=1)].tolist()


def test_onnx_falls_back_with_a_reason(churn_df, caplog):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(
        churn_df[NUMERIC].abs(), churn_df["churn"])
    with mloop.start_run(experiment="serving-tests") as run:
        run.log_model(model, "odd", input_example=churn_df[NUMERIC].abs().head(5), register=True)
    with caplog.at_level(logging.WARNING, logger="mloop.serving.onnx"):
        app = create_app("odd/1", onnx=True, reload_interval=0)
    assert app.state.serving.champion.onnx is None
    assert any("serving the native flavor" in r.getMessage() and "odd/1" in r.getMessage() for r in caplog.records)
    rows = churn_df[NUMERIC].abs().head(3)
    with ServerThread(app) as srv:
        doc = httpx.post(f"{srv.url}/predict", json=rows.to_dict("records")).json()
    np.testing.assert_allclose([p["1"] for p in doc["probabilities"]], model.predict_proba(rows)[:, 1], rtol=1e-12)


def test_input_resolver_turns_keys_into_inputs(churn_df):
    mv, pipe = register_numeric("churn", churn_df)
    table = churn_df[NUMERIC].head(10).reset_index(drop=True)

    def resolve(columns, n):
        ids = columns.pop("customer_id")
        return {c: [table.loc[i, c].item() for i in ids] for c in NUMERIC} | columns

    app = create_app("churn@champion", input_resolver=resolve, reload_interval=0)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as c:
        doc = c.post("/predict", json=[{"customer_id": 3}, {"customer_id": 7}]).json()
        bad = c.post("/predict", json=[{"nobody": 1}])
    np.testing.assert_allclose([p["1"] for p in doc["probabilities"]], pipe.predict_proba(table.iloc[[3, 7]])[:, 1])
    assert bad.status_code == 422 and "customer_id" in bad.json()["message"]


def test_numeric_pipeline_takes_the_block_path_with_equal_answers(churn_df):
    """A pipeline fitted on exactly the signature's numeric columns is handed a float block (no
    DataFrame); its answers equal scikit-learn's on a DataFrame for held-out rows (labels exactly)."""
    from mloop.serving.server import ServeOptions, _load

    mv, pipe = register_numeric("blocky", churn_df)
    served = _load("blocky@champion", ServeOptions(uri="blocky@champion"), "")
    assert served._array_native is not None
    held = churn_frame(300, seed=5)[NUMERIC]
    cols = {c: held[c].tolist() for c in NUMERIC}
    pred, proba = served.predict(cols, len(held))
    np.testing.assert_allclose(proba, pipe.predict_proba(held), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(pred, pipe.predict(held))
    # a value that is not clean (None in a numeric column) takes the checked frame path: a 422 as before
    cols["income"][0] = None
    with pytest.raises(InvalidInput, match="could not score the input: Input X contains NaN"):
        served.predict(cols, len(held))


def test_by_name_column_selection_keeps_the_frame_path(churn_df):
    """A ColumnTransformer that picks numeric columns by name refuses a block, so the frame path stays."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from mloop.serving.server import ServeOptions, _load

    pipe = Pipeline([("prep", ColumnTransformer([("num", StandardScaler(), ["income", "age"])])),
                     ("clf", LogisticRegression())]).fit(churn_df[NUMERIC], churn_df["churn"])
    with mloop.start_run(experiment="serving-tests") as run:
        mv = run.log_model(pipe, "byname", input_example=churn_df[NUMERIC].head(5), register=True)
    served = _load(f"byname/{mv.version}", ServeOptions(uri=f"byname/{mv.version}"), "")
    assert served._block_dtype is not None and served._array_native is None
    held = churn_frame(50, seed=6)[NUMERIC]
    _, proba = served.predict({c: held[c].tolist() for c in NUMERIC}, len(held))
    np.testing.assert_allclose(proba, pipe.predict_proba(held), rtol=1e-12, atol=1e-15)
