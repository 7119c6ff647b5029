"""The verified local load cache of scikit-learn models (registry/load_cache.py): a hit never
imports skops and predicts as the original; a tampered, foreign-keyed, mis-versioned, disabled or
other digest's entry is a miss that falls back to the skops path and rewrites the entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import mloop
from mloop.registry import load_cache

LOAD = """
import json, sys
import pandas as pd
import mloop
df = pd.read_json(sys.argv[1], orient="split")
model = mloop.models.load("lc@champion")
print(json.dumps({"skops": "skops" in sys.modules, "pred": model.predict(df).tolist(),
                  "proba": model.predict_proba(df).to_numpy().tolist()}))
"""


@pytest.fixture
def logged(tmp_path):
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    y = (X.a - X.b > 0).astype(int)
    pipe = Pipeline([("s", StandardScaler()), ("m", LogisticRegression())]).fit(X.iloc[:150], y.iloc[:150])
    mv = mloop.models.log_model(pipe, "lc", input_example=X.head(), register=True)
    mloop.models.set_alias("lc", "champion", mv.version)
    held = X.iloc[150:]
    path = tmp_path / "held.json"
    held.to_json(path, orient="split")
    return pipe, held, mv, path


def _fresh_load(path, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_same(result, pipe, held):
    np.testing.assert_array_equal(result["pred"], pipe.predict(held))
    np.testing.assert_allclose(result["proba"], pipe.predict_proba(held))


def test_hit_skips_skops_and_tamper_falls_back(logged):
    pipe, held, mv, path = logged
    entry = load_cache.path_for(mv.digest)
    assert entry.is_file()  # written by log_model from the object it saved
    result = _fresh_load(path)
    assert result["skops"] is False
    _assert_same(result, pipe, held)

    data = bytearray(entry.read_bytes())
    data[-10] ^= 0x01  # one bit flipped inside the pickle
    entry.write_bytes(bytes(data))
    assert load_cache.get(mv.digest) is None
    result = _fresh_load(path)
    assert result["skops"] is True  # the skops path, from the verified blob
    _assert_same(result, pipe, held)
    assert entry.read_bytes() != bytes(data) and load_cache.get(mv.digest) is not None  # rewritten

    result = _fresh_load(path, MLOOP_MODEL_CACHE="0")
    assert result["skops"] is True
    _assert_same(result, pipe, held)


def test_disabled_neither_reads_nor_writes(logged, monkeypatch):
    pipe, held, mv, _ = logged
    entry = load_cache.path_for(mv.digest)
    entry.unlink()
    monkeypatch.setenv("MLOOP_MODEL_CACHE", "0")
    mloop.models.clear_cache()
    np.testing.assert_array_equal(mloop.models.load("lc@champion").predict(held), pipe.predict(held))
    assert not entry.exists()
    monkeypatch.delenv("MLOOP_MODEL_CACHE")
    mloop.models.clear_cache()
    mloop.models.load("lc@champion")  # a skops load writes the entry
    hit = load_cache.get(mv.digest)
    assert hit is not None
    np.testing.assert_allclose(hit[0].predict_proba(held), pipe.predict_proba(held))


def test_missing_or_foreign_key_is_a_miss(logged):
    _, _, mv, _ = logged
    key_path = load_cache.folder() / load_cache.KEY_FILE
    load_cache._keys.clear()
    key_path.unlink()
    assert load_cache.get(mv.digest) is None  # no key: nothing verifies (and get never creates one)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    assert load_cache.get(mv.digest) is None  # another key: the MAC fails
    os.chmod(key_path, 0o644)
    load_cache._keys.clear()
    assert load_cache.key() is None  # readable by others: the cache is off
    assert load_cache.put(mv.digest, object(), {}) is False


def test_another_digest_never_hits(logged):
    _, _, mv, _ = logged
    other = "blake3:" + "0" * 64
    load_cache.path_for(other).write_bytes(load_cache.path_for(mv.digest).read_bytes())
    assert load_cache.get(other) is None
    assert load_cache.get(mv.digest) is not None


def test_version_mismatch_is_a_miss(logged, monkeypatch):
    pipe, held, mv, _ = logged
    real = load_cache._libraries
    monkeypatch.setattr(load_cache, "_libraries", lambda model: {**real(model), "sklearn": "0.0.1"})
    assert load_cache.put(mv.digest, pipe, mv.manifest)
    monkeypatch.setattr(load_cache, "_libraries", real)
    assert load_cache.get(mv.digest) is None  # correctly keyed, but written under another scikit-learn
    mloop.models.clear_cache()
    np.testing.assert_array_equal(mloop.models.load("lc@champion").predict(held), pipe.predict(held))
    assert load_cache.get(mv.digest) is not None  # the fallback rewrote it
