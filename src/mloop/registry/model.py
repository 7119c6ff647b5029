"""`Model`: a loaded model behind one interface whatever its flavor, and `load(uri)`.

Loading reads the model directory's manifest blob and each file through the blob store, which
verifies every digest before a byte reaches a deserialiser. Loaded models are cached per process
by digest; pickle-based flavors need `trust=True` or `MLOOP_TRUST_PICKLE=1`, cached or not.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, MissingDependency, NotFound
from mloop.registry.signature import Enforcer, Signature

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mloop.registry.records import ModelVersion

MANIFEST = "mloop-model.yaml"
NEEDS_TRUST = ("pyfunc",)
_FLAVOR_DIST = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm", "onnx": "onnxruntime",
                "pyfunc": "cloudpickle"}
_MODULE_DIST = {"sklearn": "scikit-learn"}
_cache: dict[str, tuple[Any, dict]] = {}
_cache_lock = threading.Lock()


class Model:
    """A loaded model: `predict`, `predict_proba`, `prepare`, `predict_batch`; `classes`, `task`,
    `signature`, `manifest`, `version` (a ModelVersion or None), `native` (the underlying estimator).

    >>> model = mloop.models.load("churn@champion")  # doctest: +SKIP
    >>> model.predict(df)[:3]  # doctest: +SKIP
    """

    def __init__(self, predictor: Any, manifest: dict, *, version: ModelVersion | None = None,
                 digest: str | None = None, label: str = "model") -> None:
        self._predictor = predictor
        self.manifest = manifest
        self.version = version
        self.digest = digest
        self.label = label
        self.signature = Signature.from_dict(manifest.get("signature"))
        self.task: str = manifest.get("task") or "regression"
        self.classes: list | None = manifest.get("classes")
        self._enforce = Enforcer(self.signature, label)

    @property
    def native(self) -> Any:
        """The underlying estimator, booster or session."""
        return self._predictor.native

    @property
    def flavor(self) -> str:
        return self.manifest.get("flavor", "")

    def prepare(self, data: Any) -> pd.DataFrame:
        """The input as a frame that fits the signature (columns in order, dtypes coerced)."""
        return self._enforce(data)

    def predict(self, data: Any) -> np.ndarray:
        """Predictions as a 1-D array (labels for classifiers)."""
        import numpy as np

        df = self.prepare(data)
        if len(df) == 0:
            return np.empty(0, dtype=object if self.task == "classification" else "float64")
        out = np.asarray(self._predictor.predict(df))
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        return out.ravel() if out.ndim > 1 and out.shape[0] == len(df) and out.size == len(df) else out

    def predict_proba(self, data: Any) -> pd.DataFrame:
        """Class probabilities, one `proba_<class>` column per class in the manifest's order."""
        import pandas as pd

        if self.task != "classification":
            raise InvalidInput(f"{self.label} is a {self.task} model; predict_proba applies to classifiers only")
        df = self.prepare(data)
        return pd.DataFrame(self._proba(df), columns=self.proba_columns, index=df.index)

    @property
    def proba_columns(self) -> list[str]:
        return [f"proba_{c}" for c in (self.classes or [])]

    def _proba(self, df: pd.DataFrame) -> np.ndarray:
        import numpy as np

        k = len(self.classes or [])
        if len(df) == 0:
            return np.empty((0, k))
        proba = np.asarray(self._predictor.predict_proba(df), dtype="float64")
        if self.classes is None:
            self.classes = list(range(proba.shape[1]))
        return proba

    def score(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """`(labels, probabilities)` from one model call on a prepared frame (labels from the
        probabilities for classifiers; probabilities None for regressors)."""
        import numpy as np

        if self.task == "classification":
            proba = self._proba(df)
            labels = np.asarray(self.classes)[proba.argmax(axis=1)] if len(df) else np.empty(0, dtype=object)
            return labels, proba
        return self.predict(df), None

    def predict_batch(self, src: str | os.PathLike, dst: str | os.PathLike, *, batch_rows: int = 65_536,
                      keep: list[str] | str | None = None, progress: bool = False) -> dict:
        """Score a parquet file, a CSV file or a folder of parquet files into one parquet file,
        streaming record batches (bounded memory); returns `{"rows", "seconds", "output"}`."""
        from mloop.registry.batch import predict_batch

        return predict_batch(self, src, dst, batch_rows=batch_rows, keep=keep, progress=progress)

    def __repr__(self) -> str:
        return f"Model({self.label}, flavor={self.flavor!r}, task={self.task!r})"


class ModelFiles:
    """The files of a model directory blob, each read verified against its digest."""

    def __init__(self, digest: str, label: str) -> None:
        from mloop.artifacts import get_blob_store

        self.blobs = get_blob_store()
        self.digest = digest
        self.label = label
        try:
            self.entries = {e.path: e for e in self.blobs.read_manifest(digest)}
        except NotFound as exc:
            raise NotFound(f"{label}: its files ({digest}) are missing from the artifact store "
                           f"{self.blobs.uri}") from exc

    def read(self, path: str) -> bytes:
        entry = self.entries.get(path)
        if entry is None:
            raise NotFound(f"{self.label} has no file {path!r} (files: {', '.join(self.entries)})")
        return self.blobs.get(entry.digest)

    def folder(self) -> Path:
        """A verified copy of the whole directory (for flavors that open files by path)."""
        from mloop.artifacts.hashing import hex_of
        from mloop.config import get_settings

        dest = get_settings().home / "cache" / "models" / hex_of(self.digest)
        return self.blobs.copy_to(self.digest, dest, is_dir=True)


def read_manifest(files: ModelFiles) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(files.read(MANIFEST), Loader=loader)  # noqa: S506 - a safe loader


def _trusted(trust: bool) -> bool:
    return trust or os.environ.get("MLOOP_TRUST_PICKLE") == "1"


def _load_predictor(digest: str, flavor: str, label: str, trust: bool) -> tuple[Any, dict]:
    if flavor in NEEDS_TRUST and not _trusted(trust):
        raise InvalidInput(f"refusing to load {label}: the {flavor} flavor unpickles arbitrary code; pass trust=True "
                           "(or set MLOOP_TRUST_PICKLE=1) if you trust where it came from")
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None:
        return hit
    if flavor == "sklearn":
        hit = _from_load_cache(digest, label)
        if hit is not None:
            with _cache_lock:
                _cache[digest] = hit
            return hit
    from mloop.registry import flavors, requirements

    files = ModelFiles(digest, label)
    manifest = read_manifest(files)
    if manifest.get("flavor") != flavor:
        raise InvalidInput(f"{label}: the manifest says flavor {manifest.get('flavor')!r}, the store says {flavor!r}")
    requirements.check(manifest, label)
    module = flavors.get(flavor)
    try:
        predictor = module.load(files, manifest, trust=trust)
    except ImportError as exc:
        module_name = (getattr(exc, "name", None) or "").split(".", 1)[0]
        dist = _MODULE_DIST.get(module_name, module_name) if module_name else _FLAVOR_DIST.get(flavor, flavor)
        saved = (manifest.get("libraries") or {}).get(dist)
        pin = f"{dist}=={saved}" if saved else dist
        raise MissingDependency(f"{label} needs {dist}{' ' + saved if saved else ''} to load ({exc}); "
                                f"run: pip install '{pin}'") from exc
    if flavor == "sklearn":  # verified digest, exactly the recorded types: safe to cache (load_cache)
        from mloop.registry import load_cache

        load_cache.put(digest, predictor.native, manifest)
    with _cache_lock:
        _cache[digest] = (predictor, manifest)
    return predictor, manifest


def _from_load_cache(digest: str, label: str) -> tuple[Any, dict] | None:
    """A scikit-learn model from the verified local load cache (no skops import), or None."""
    from mloop.registry import load_cache

    hit = load_cache.get(digest)
    if hit is None:
        return None
    native, manifest, libraries = hit
    from mloop.registry import requirements
    from mloop.registry.flavors.sklearn_flavor import Predictor

    # the libraries the pickle uses were checked equal to the header's; compare those with the manifest
    installed = {requirements.DIST_OF_MODULE.get(root, root): version for root, version in libraries.items()}
    requirements.check(manifest, label, known=installed)
    return Predictor(native), manifest


def load(uri: str, *, trust: bool = False) -> Model:
    """Load a model by URI (`churn@champion`, `churn/3`, `runs:/<id>/model`); cached per process by digest.

    >>> mloop.models.load("churn@champion").predict(df)  # doctest: +SKIP
    """
    from mloop.registry import uris

    ref = uris.parse(uri)
    if ref.run_id is not None:
        digest = logged_digest(ref.run_id, ref.path or "")
        label = f"model runs:/{ref.run_id}/{ref.path}"
        files = ModelFiles(digest, label)
        flavor = read_manifest(files).get("flavor", "")
        predictor, manifest = _load_predictor(digest, flavor, label, trust)
        return Model(predictor, manifest, digest=digest, label=label)
    from mloop.registry.versions import get

    mv = get(uri)
    label = f"model '{mv.name}/{mv.version}'"
    predictor, manifest = _load_predictor(mv.digest, mv.flavor, label, trust)
    return Model(predictor, manifest, version=mv, digest=mv.digest, label=label)


def logged_digest(run_id: str, path: str) -> str:
    """The digest of the model a run logged under `path`."""
    from mloop.store.db import get_store
    from mloop.store.tracking import RunArtifactRepo, RunRepo

    store = get_store()
    RunRepo(store).get(run_id)
    items = RunArtifactRepo(store).list(run_id)
    for item in items:
        if item["path"] == path.strip("/") and item["is_dir"]:
            return item["digest"]
    known = [a["path"] for a in items if a["is_dir"]]
    raise NotFound(f"run {run_id} logged no model {path!r} (folders: {', '.join(known) or 'none'})")


def from_native(model: Any, *, signature: Signature | None = None, flavor: str | None = None,
                task: str | None = None, classes: list | None = None) -> Model:
    """Wrap an in-memory estimator as a `Model` (no saving), for evaluation and autologging."""
    if isinstance(model, Model):
        return model
    from mloop.registry import flavors

    module = flavors.detect(model, flavor)
    found_task, found_classes = module.describe(model)
    manifest = {"flavor": module.NAME, "task": task or found_task,
                "classes": classes if classes is not None else found_classes,
                "signature": signature.to_dict() if signature else {}}
    return Model(module.wrap(model), manifest, label=f"in-memory {type(model).__name__}")


def clear_cache() -> None:
    """Forget every loaded model (tests, long-lived servers after a redeploy)."""
    with _cache_lock:
        _cache.clear()
