"""The PyYAML-free manifest writer (registry/manifest_yaml.py): PyYAML's safe loaders (pure Python
and libyaml) read back exactly what was written, real manifests take that path, and whatever it
cannot spell safely is left to PyYAML."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

import mloop
from mloop.registry import manifest_yaml
from mloop.registry.model import MANIFEST, ModelFiles, read_manifest

LOADERS = [yaml.SafeLoader, *([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])]

EDGES = {
    "floats": [0.1, 1e-05, 1e16, -2.5e-300, 123.0, -0.0, 1.7976931348623157e308, 5e-324],
    "ints": [0, -5, 2**70, 7],
    "flags": [True, False, None],
    "strings": ["", "a: b", "# not a comment", "- not an item", "'single'", '"double"', "back\\slash", "yes", "no",
                "null", "1.5", "0x1F", "~", " lead", "trail ", "@at", "%p", "{x}", "[y]", "&a *b !c |d >e", "1e3",
                "2026-12-01", "12:30:00", "True", "OFF", "Null", "y", "n", "on", "plain_word", "dotted.name-1", ".inf",
                ".nan", "_private", "<<"],
    "empty": {"dict": {}, "list": [], "string": ""},
    "nested": [[1, [2, [3]]], [], {"k": [{"a": 1, "b": [True, {"c": None}]}, []]}, {}],
    "": "empty key",
    "yes": 1, "null": 2, "On": 3, "~": 4, "12": 5, "0x1F": 6, "1.5": 7,
    "key with spaces: and colon": {"deeper": {"still": ["x"]}},
}


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
def test_round_trip_is_exact(loader):
    text = manifest_yaml.dump(EDGES)
    assert text is not None
    assert yaml.load(text, Loader=loader) == EDGES  # noqa: S506 - safe loaders only
    for value, back in zip(EDGES["floats"], yaml.load(text, Loader=loader)["floats"], strict=True):  # noqa: S506
        assert type(back) is float and math.copysign(1, back) == math.copysign(1, value)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
def test_non_finite_floats(loader):
    back = yaml.load(manifest_yaml.dump({"m": [math.nan, math.inf, -math.inf]}), Loader=loader)["m"]  # noqa: S506
    assert math.isnan(back[0]) and back[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("value", [
    {"label": "café"}, {"tab": "a\tb"}, {"newline": "a\nb"}, {"nul": "\x00"}, {1: "int key"}, {"k" * 1001: 1},
    {"tuple": (1, 2)}, {"numpy": np.float64(1.5)}, {"set": {1}}, {"bytes": b"x"}, {"nested": [{"deep": "é"}]},
])
def test_values_outside_the_subset_are_left_to_pyyaml(value):
    assert manifest_yaml.dump(value) is None


def test_log_model_writes_the_manifest_both_ways(monkeypatch):
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["plain", "naïve"])
    y = np.where(X.plain > 0, "yes", "no")  # string labels that YAML 1.1 would read as booleans unquoted
    model = LogisticRegression().fit(X, y)

    calls = []
    real = manifest_yaml.dump
    monkeypatch.setattr(manifest_yaml, "dump", lambda data: calls.append(real(data)) or calls[-1])
    X1 = X[["plain"]]
    ascii_model = LogisticRegression().fit(X1, y)
    info = mloop.models.log_model(ascii_model, "ascii", input_example=X1.head())
    assert calls[-1] is not None  # the PyYAML-free path wrote it
    files = ModelFiles(info.digest, "ascii")
    assert files.read(MANIFEST).decode() == calls[-1]
    assert read_manifest(files) == info.manifest and info.manifest["classes"] == ["no", "yes"]

    info = mloop.models.log_model(model, "unicode", input_example=X.head())
    assert calls[-1] is None  # a non-ASCII column name: PyYAML wrote it
    manifest = read_manifest(ModelFiles(info.digest, "unicode"))
    assert manifest == info.manifest and [c["name"] for c in manifest["signature"]["inputs"]] == ["plain", "naïve"]
    np.testing.assert_array_equal(mloop.models.load(info.uri).predict(X), model.predict(X))
