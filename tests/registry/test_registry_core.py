"""Registry core: sklearn round trip, versions, aliases with history and lineage, URIs, NotFound
messages, tags, search, soft delete, blob verification and trust rules (SQLite and PostgreSQL)."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import mloop
from mloop.errors import Conflict, CorruptBlob, InvalidInput, NotFound


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "n": rng.integers(0, 10, n), "city": rng.choice(["a", "b", "c"], n)})
    y = ((df.x1 + 0.5 * df.x2 + (df.city == "a")) > 0.3).astype(int)
    return df, y


def _pipe():
    return Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), ["x1", "x2", "n"]),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])])),
        ("clf", RandomForestClassifier(n_estimators=15, random_state=0)),
    ])


@pytest.fixture
def fitted():
    X, y = _data()
    return _pipe().fit(X.iloc[:300], y.iloc[:300]), X, y


def test_sklearn_round_trip_and_record(tracking_uri, fitted):
    pipe, X, y = fitted
    held = X.iloc[300:]
    with mloop.start_run(experiment="reg") as run:
        run.log_metric("cv_auc", 0.8)
        mv = run.log_model(pipe, "churn", input_example=X.head(), register=True)
    assert (mv.name, mv.version, mv.run_id, mv.flavor, mv.task) == ("churn", 1, run.id, "sklearn", "classification")
    assert mv.uri == "models:/churn/1" and mv.digest.startswith("blake3:") and mv.metrics["cv_auc"] == 0.8
    assert "sklearn.tree._tree.Tree" in mv.manifest["trusted_types"]
    assert {"schema_version", "flavor", "libraries", "task", "classes", "signature", "input_example",
            "requirements", "features", "metrics", "datasets"} <= set(mv.manifest)
    assert any(r.startswith("scikit-learn==") for r in mv.manifest["requirements"])
    assert [c["name"] for c in mv.signature.inputs] == ["x1", "x2", "n", "city"]
    model = mloop.models.load("churn/1")
    np.testing.assert_array_equal(model.predict(held), pipe.predict(held))
    proba = model.predict_proba(held)
    assert list(proba.columns) == ["proba_0", "proba_1"] and model.classes == [0, 1]
    np.testing.assert_allclose(proba.to_numpy(), pipe.predict_proba(held))
    assert model.predict(held.iloc[:0]).shape == (0,)
    assert model.predict_proba(held.iloc[:0]).shape == (0, 2)
    assert mloop.models.load("churn/1") is not model and mloop.models.load("churn/1").native is model.native


def test_versions_aliases_history_lineage(tracking_uri, fitted):
    from mloop.store import get_store
    from mloop.store.lineage import LineageRepo

    pipe, X, _ = fitted
    runs = []
    for _ in range(2):
        with mloop.start_run(experiment="reg") as run:
            run.log_model(pipe, "churn", input_example=X.head(), register=True)
            runs.append(run.id)
    assert mloop.models.resolve("churn@latest") == ("churn", 2)
    assert mloop.models.resolve("models:/churn/1") == ("churn", 1)
    mloop.models.set_alias("churn", "champion", 1)
    mv = mloop.models.set_alias("churn", "champion", 2, reason="better")
    assert mv.aliases == ["champion"] and mloop.models.get("churn@champion").version == 2
    sha = mloop.models.get("churn/2").digest.split(":")[1][:10]
    assert mloop.models.resolve(f"churn@sha:{sha}")[0] == "churn"
    hist = mloop.models.alias_history("churn")
    assert [(h["alias"], h["from_version"], h["to_version"], h["reason"]) for h in hist] == [
        ("champion", None, 1, None), ("champion", 1, 2, "better")]
    edges = LineageRepo(get_store()).edges(("model_version", "churn/2"))
    rel = {(e.from_kind, e.from_id, e.relation, e.to_kind, e.to_id) for e in edges}
    assert ("run", runs[1], "produced", "model_version", "churn/2") in rel
    assert ("model_version", "churn/2", "promoted", "alias", "churn@champion") in rel
    from mloop.tracking.lineage import resolve

    assert resolve("models:/churn@champion") == ("model_version", "churn/2")
    mloop.models.delete_alias("churn", "champion", reason="retired")
    assert mloop.models.alias_history("churn", "champion")[-1]["to_version"] is None
    with pytest.raises(NotFound, match=r"no alias 'champion' \(aliases: none\)"):
        mloop.models.get("churn@champion")


def test_not_found_lists_what_exists(tracking_uri, fitted):
    pipe, X, _ = fitted
    mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    with pytest.raises(NotFound, match=r"no model 'nope' \(models: churn\)"):
        mloop.models.load("nope@champion")
    with pytest.raises(NotFound, match=r"no version 7 \(versions: 1\)"):
        mloop.models.get("churn/7")
    mloop.models.set_alias("churn", "challenger", 1)
    with pytest.raises(NotFound, match=r"aliases: challenger"):
        mloop.models.get("churn@champion")
    for bad in ("churn@latest/1", "bad name", "churn@123x!"):
        with pytest.raises(InvalidInput):
            mloop.models.resolve(bad)
    with pytest.raises(InvalidInput):
        mloop.models.set_alias("churn", "latest", 1)


def test_tags_description_search_delete_restore(tracking_uri, fitted):
    pipe, X, _ = fitted
    for name in ("churn", "churn-eu", "fraud"):
        mloop.models.log_model(pipe, name, input_example=X.head(), register=True)
    mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True, tags={"stage": "ok"})
    mloop.models.set_tags("churn", {"team": "growth"})
    mloop.models.set_tags("fraud/1", {"stage": "ok"})
    mloop.models.set_description("churn/2", "second try")
    assert mloop.models.get("churn/2").description == "second try"
    found = mloop.models.search("name LIKE 'churn%'")
    assert [(m.name, m.version) for m in found] == [("churn", 2), ("churn", 1), ("churn-eu", 1)]
    assert [(m.name, m.version) for m in mloop.models.search("version_tags.stage = 'ok'")] == [("churn", 2), ("fraud", 1)]
    assert {m.name for m in mloop.models.search("tags.team = 'growth'")} == {"churn"}
    with pytest.raises(InvalidInput):
        mloop.models.search("bogus.x = 1")
    mloop.models.set_alias("churn", "champion", 2)
    with pytest.raises(Conflict, match="holds alias"):
        mloop.models.delete("churn/2")
    mloop.models.delete("churn/1")
    assert [v.version for v in mloop.models.list_versions("churn")] == [2]
    with pytest.raises(NotFound, match="deleted"):
        mloop.models.get("churn/1")
    mloop.models.restore("churn/1")
    assert mloop.models.get("churn/1").version == 1
    mloop.models.delete("fraud")
    assert "fraud" not in [m["name"] for m in mloop.models.list_models()]
    with pytest.raises(NotFound, match="deleted"):
        mloop.models.load("fraud/1")
    mloop.models.restore("fraud")
    assert mloop.models.load("fraud/1").task == "classification"


def _register_many(uri: str, n: int, queue) -> None:  # noqa: ANN001
    import mloop as m

    queue.put([m.models.register(uri, "shared").version for _ in range(n)])


def test_concurrent_registrations_get_distinct_versions(tracking_uri, fitted):
    pipe, X, _ = fitted
    info = mloop.models.log_model(pipe, "base", input_example=X.head())
    assert info.uri.startswith("runs:/")
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_register_many, args=(info.uri, 4, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    got = [v for _ in procs for v in queue.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(got) == list(range(1, 17))
    assert [v.version for v in mloop.models.list_versions("shared")] == list(range(1, 17))


def test_digest_verified_before_load(fitted, monkeypatch):
    from mloop.artifacts import get_blob_store

    monkeypatch.setenv("MLOOP_MODEL_CACHE", "0")  # the artifact-store path (load_cache never reads the store)

    pipe, X, _ = fitted
    mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    blobs = get_blob_store()
    entry = next(e for e in blobs.read_manifest(mv.digest) if e.path == "model.skops")
    path = blobs.local_path(entry.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    mloop.models.clear_cache()
    with pytest.raises(CorruptBlob):
        mloop.models.load("churn/1")


def test_untrusted_type_not_in_manifest_is_refused(fitted, monkeypatch):
    from mloop.registry.flavors import sklearn_flavor

    pipe, X, _ = fitted
    monkeypatch.setenv("MLOOP_MODEL_CACHE", "0")  # the skops path (a cache entry comes only from a verified object)
    original = sklearn_flavor.save

    def forgetful(model, folder, *, trust=False):  # noqa: ANN001
        options = original(model, folder, trust=trust)
        return {**options, "trusted_types": []}  # as if the manifest had recorded nothing

    monkeypatch.setattr(sklearn_flavor, "save", forgetful)
    mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    with pytest.raises(InvalidInput, match=r"sklearn\.tree\._tree\.Tree"):
        mloop.models.load("churn/1")


class Doubler:
    task = "regression"

    def predict(self, df):  # noqa: ANN001
        return df["x1"].to_numpy() * 2


def test_pyfunc_needs_trust(fitted, monkeypatch):
    _, X, _ = fitted
    mv = mloop.models.log_model(Doubler(), "dbl", input_example=X.head(), register=True)
    assert mv.flavor == "pyfunc"
    with pytest.raises(InvalidInput, match="trust=True"):
        mloop.models.load("dbl/1")
    np.testing.assert_allclose(mloop.models.load("dbl/1", trust=True).predict(X), X.x1 * 2)
    mloop.models.clear_cache()
    with pytest.raises(InvalidInput, match="MLOOP_TRUST_PICKLE"):
        mloop.models.load("dbl/1")
    monkeypatch.setenv("MLOOP_TRUST_PICKLE", "1")
    assert mloop.models.load("dbl/1").predict(X.head(2)).shape == (2,)
    with pytest.raises(InvalidInput, match="classifiers only"):
        mloop.models.load("dbl/1").predict_proba(X)


def test_reserved_signature_column_refused(fitted):
    pipe, X, y = fitted
    lr = LogisticRegression().fit(X[["x1", "x2"]].rename(columns={"x1": "prediction"}), y)
    with pytest.raises(InvalidInput, match="reserves"):
        mloop.models.log_model(lr, "bad", input_example=X[["x1", "x2"]].rename(columns={"x1": "prediction"}))


def test_validation_data_sample_and_metrics(fitted):
    from sklearn.metrics import roc_auc_score

    from mloop.artifacts import get_blob_store

    pipe, X, y = fitted
    valid = X.iloc[300:].assign(label=y.iloc[300:])
    mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True, validation_data=valid)
    assert mv.validation_data and mv.manifest["target"] == "label"
    assert mv.metrics["roc_auc"] == pytest.approx(roc_auc_score(valid.label, pipe.predict_proba(X.iloc[300:])[:, 1]))
    import io

    back = pd.read_parquet(io.BytesIO(get_blob_store().get(mv.validation_data)))
    pd.testing.assert_frame_equal(back, valid.reset_index(drop=True), check_dtype=False)
    pd.testing.assert_frame_equal(mv.validation_frame(), back)
    assert "validation.parquet" in {e.path for e in get_blob_store().read_manifest(mv.digest)}


def test_library_version_mismatch_warns(fitted, monkeypatch):
    from mloop.registry import requirements

    monkeypatch.setenv("MLOOP_MODEL_CACHE", "0")  # the skops path

    pipe, X, _ = fitted
    mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    mloop.models.clear_cache()
    real = requirements.installed
    monkeypatch.setattr(requirements, "installed", lambda d: "0.0.1" if d == "scikit-learn" else real(d))
    with pytest.warns(mloop.models.LibraryVersionWarning, match=r"scikit-learn 1\..*0\.0\.1"):
        mloop.models.load("churn/1")


class _DatasetVersion:
    """Stands in for a mloop.data DatasetVersion (anything with .to_pandas())."""

    def __init__(self, df):  # noqa: ANN001
        self.df = df

    def to_pandas(self):  # noqa: ANN201
        return self.df


def test_validation_data_from_a_dataset_version_and_sampling(fitted, monkeypatch):
    from mloop.registry import save

    pipe, X, y = fitted
    monkeypatch.setattr(save, "SAMPLE_ROWS", 50)
    mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True,
                                validation_data=_DatasetVersion(X.assign(label=y)), target="label")
    import io

    from mloop.artifacts import get_blob_store

    back = pd.read_parquet(io.BytesIO(get_blob_store().get(mv.validation_data)))
    assert len(back) == 50 and "label" in back.columns
    again = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True,
                                   validation_data=X.assign(label=y), target="label")
    assert again.validation_data == mv.validation_data  # the seeded sample is the same blob
    # `mloop.models` loads mloop.data, so a dataset URI resolves: unknown names are NotFound...
    with pytest.raises(NotFound, match="churn-valid"):
        mloop.models.log_model(pipe, "churn", input_example=X.head(), validation_data="churn-valid@1")
    # ...and a stored version is sampled like the frame it holds.
    mloop.data.add(X.assign(label=y), name="churn-valid")
    by_uri = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True,
                                    validation_data="churn-valid@1", target="label")
    assert len(pd.read_parquet(io.BytesIO(get_blob_store().get(by_uri.validation_data)))) == 50


def test_round_trip_on_each_artifact_store(artifact_uri, fitted):
    pipe, X, _ = fitted
    mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    mloop.models.clear_cache()
    np.testing.assert_array_equal(mloop.models.load("churn/1").predict(X), pipe.predict(X))


def test_stored_manifest_reads_back_as_the_version_s_manifest(tracking_uri, fitted):
    import yaml

    from mloop.artifacts import get_blob_store

    pipe, X, _ = fitted
    mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    blobs = get_blob_store()
    entry = next(e for e in blobs.read_manifest(mv.digest) if e.path == "mloop-model.yaml")
    assert yaml.safe_load(blobs.get(entry.digest)) == mv.manifest


def test_register_returns_the_record_get_reads(tracking_uri, fitted):
    pipe, X, _ = fitted
    mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)
    mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True, tags={"team": "risk"},
                                description="second")
    assert mv.version == 2 and mv.tags == {"team": "risk"} and mv.description == "second" and mv.aliases == []
    assert mv == mloop.models.get("churn/2")
