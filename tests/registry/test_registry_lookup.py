"""The SQLAlchemy-free one-row read of a model version (store/registry_lookup.py), on SQLite and
PostgreSQL: it returns exactly what `ModelRepo` returns, follows alias moves, answers None for
whatever it cannot tell (then `get` raises the regular NotFound listing what exists), and a fresh
process loads and predicts by alias without importing SQLAlchemy."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from mloop.errors import NotFound
from mloop.registry import versions
from mloop.store.db import get_store
from mloop.store.registry import ModelRepo
from mloop.store.registry_lookup import find_version


@pytest.fixture
def two_versions(tracking_uri):
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    y = (X.a + X.c > 0).astype(int)
    for seed in (0, 1):
        model = LogisticRegression(C=1.0 + seed).fit(X, y)
        mloop.models.log_model(model, "lk", input_example=X.head(), register=True, tags={"seed": str(seed)})
    mloop.models.set_alias("lk", "champion", 1)
    mloop.models.set_alias("lk", "challenger", 2)
    mloop.models.set_tags("lk/2", {"validated": "yes"})
    return tracking_uri, X


def _slow(uri: str) -> dict:
    name, version = versions.resolve(uri)
    row = ModelRepo(get_store()).version(name, version)
    assert row is not None
    return row


def test_rows_equal_the_store_for_every_uri_form(two_versions):
    uri, _ = two_versions
    cases = {"lk@champion": {"alias": "champion"}, "lk/1": {"version": 1}, "lk@2": {"version": 2},
             "lk@latest": {}, "lk": {}}
    for model_uri, how in cases.items():
        row = find_version(uri, "lk", **how)
        assert row is not None, model_uri  # the fast path answered
        assert row == _slow(model_uri), model_uri
        assert versions.get(model_uri) == versions.ModelVersion.from_row(_slow(model_uri))
    row = find_version(uri, "lk", alias="challenger")
    assert (row["version"], row["aliases"], row["tags"]) == (2, ["challenger"], {"seed": "1", "validated": "yes"})
    assert isinstance(row["manifest"], dict) and row["manifest"]["flavor"] == "sklearn"


def test_alias_moves_and_deletions_are_seen(two_versions):
    uri, _ = two_versions
    assert find_version(uri, "lk", alias="champion")["version"] == 1
    mloop.models.set_alias("lk", "champion", 2)
    moved = find_version(uri, "lk", alias="champion")
    assert moved["version"] == 2 and moved["aliases"] == ["challenger", "champion"]
    assert mloop.models.get("lk@champion").version == 2

    mloop.models.delete_alias("lk", "champion")
    assert find_version(uri, "lk", alias="champion") is None
    with pytest.raises(NotFound, match=r"no alias 'champion' \(aliases: challenger\)"):
        mloop.models.get("lk@champion")

    mloop.models.delete("lk/1")  # soft delete: the number and latest forms skip it
    assert find_version(uri, "lk", version=1) is None
    with pytest.raises(NotFound, match=r"no version 1 .*\(versions: 2\)"):
        mloop.models.get("lk/1")
    mloop.models.delete_alias("lk", "challenger")
    mloop.models.delete("lk/2")
    assert find_version(uri, "lk") is None
    with pytest.raises(NotFound, match="has no versions"):
        mloop.models.get("lk@latest")

    mloop.models.restore("lk/2")
    mloop.models.delete("lk")  # the whole model
    assert find_version(uri, "lk", version=2) is None
    with pytest.raises(NotFound, match="is deleted"):
        mloop.models.get("lk/2")
    assert find_version(uri, "nope") is None
    with pytest.raises(NotFound, match=r"no model 'nope' \(models: none\)"):
        mloop.models.get("nope@champion")


def test_a_store_behind_head_or_missing_is_left_to_the_regular_path(tmp_path, two_versions):
    uri, _ = two_versions
    if not uri.startswith("sqlite"):
        pytest.skip("the revision edit below is written for SQLite")
    path = uri[len("sqlite:///"):]
    with sqlite3.connect(path) as conn:
        (head,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = 'older'")
    assert find_version(uri, "lk", alias="champion") is None
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (head,))
    assert find_version(uri, "lk", alias="champion")["version"] == 1

    missing = tmp_path / "none" / "mloop.db"
    assert find_version(f"sqlite:///{missing}", "lk") is None
    assert not missing.exists()  # never creates a database
    assert find_version("sqlite:///:memory:", "lk") is None


FRESH = """
import json, sys
import pandas as pd
import mloop
df = pd.read_json(sys.argv[1], orient="split")
model = mloop.models.load("lk@champion")
loaded = {"sqlalchemy": "sqlalchemy" in sys.modules, "skops": "skops" in sys.modules,
          "data room": "mloop.data" in sys.modules or "mloop.validation" in sys.modules,
          "version": model.version.version, "pred": model.predict(df).tolist()}
from mloop.tracking.lineage import resolve  # lineage loaded after the registry still resolves models:/
loaded["lineage"] = list(resolve("models:/lk@champion"))
# a dataset URI given to the registry loads the data room on demand (unknown here: NotFound)
try:
    mloop.models.log_model(model.native, "lk", input_example=df.head(), validation_data="never-added@1")
except mloop.errors.NotFound as exc:
    loaded["dataset uri"] = str(exc)
print(json.dumps(loaded))
"""


def test_fresh_process_loads_by_alias_without_sqlalchemy(tmp_path, two_versions):
    uri, X = two_versions
    mloop.models.set_alias("lk", "champion", 2)
    path = tmp_path / "rows.json"
    X.to_json(path, orient="split")
    env = {**os.environ, "MLOOP_TRACKING_URI": uri}
    out = subprocess.run([sys.executable, "-c", FRESH, str(path)], capture_output=True, text=True, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["sqlalchemy"] is False and result["skops"] is False and result["data room"] is False
    assert "never-added" in result["dataset uri"]
    assert result["version"] == 2 and result["lineage"] == ["model_version", "lk/2"]
    np.testing.assert_array_equal(result["pred"], mloop.models.load("lk/2").native.predict(X))


def test_a_process_with_the_store_open_uses_its_pool(two_versions):
    uri, _ = two_versions
    get_store()  # the pooled store of this process is open: a fresh connection per lookup would cost more
    assert versions._quick_row("lk@champion") is None
    assert mloop.models.get("lk@champion").version == 1
    mloop.config.reset()  # closes the pooled store
    row = versions._quick_row("lk@champion")
    assert row is not None and row == _slow("lk@champion")
