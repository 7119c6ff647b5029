"""The signature comes from the columns the model was fitted on: an input example that also holds the
target (or an id) does not make predict demand it, and columns come in the fitted order."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import mloop


def test_example_with_target_and_other_order_gives_the_fitted_signature(caplog):
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    df["label"] = (df.a - df.b > 0).astype(int)
    model = LogisticRegression().fit(df[["a", "b"]], df["label"])
    example = df[["label", "b", "a"]].head(5)  # the target included, features out of order
    with caplog.at_level(logging.WARNING, logger="mloop.registry.save"):
        mv = mloop.models.log_model(model, "with-target", input_example=example, register=True)
    assert "label" in caplog.text and "left out of the signature" in caplog.text
    got = mloop.models.get(f"with-target/{mv.version}")
    assert [i["name"] for i in got.signature.inputs] == ["a", "b"]
    loaded = mloop.models.load(f"with-target/{mv.version}")
    np.testing.assert_array_equal(loaded.predict(df[["a", "b"]]), model.predict(df[["a", "b"]]))
