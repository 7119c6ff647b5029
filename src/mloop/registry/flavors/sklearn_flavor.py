"""scikit-learn (any estimator, Pipeline included), saved with skops.

At save the file's untrusted types (`skops.io.get_untrusted_types`) are recorded in the manifest;
at load exactly that list is trusted, and a file holding any other type is refused by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.registry.flavors import module_roots, plain

NAME = "sklearn"
PACKAGES = ("scikit-learn", "skops", "numpy", "scipy")
FILE = "model.skops"


def detect(model: Any) -> bool:
    if "sklearn" in module_roots(model):
        return True
    return hasattr(model, "get_params") and hasattr(model, "fit") and hasattr(model, "predict")


def describe(model: Any) -> tuple[str, list | None]:
    from sklearn.base import is_classifier

    if is_classifier(model) or (hasattr(model, "predict_proba") and hasattr(model, "classes_")):
        classes = getattr(model, "classes_", None)
        return "classification", [plain(c) for c in classes] if classes is not None else None
    return "regression", None


def save(model: Any, folder: Path, *, trust: bool = False) -> dict:
    import skops.io as sio

    try:
        data = sio.dumps(model)
    except Exception as exc:  # skops refuses objects it cannot represent (lambdas, open files, ...)
        raise InvalidInput(f"skops cannot save this {type(model).__name__} ({exc}); log it as pyfunc "
                           "(flavor='pyfunc', which needs trust=True to load)") from exc
    untrusted = sorted(sio.get_untrusted_types(data=data))
    (folder / FILE).write_bytes(data)
    return {"file": FILE, "format": "skops", "trusted_types": untrusted}


def load(files: Any, manifest: dict, *, trust: bool = False) -> Predictor:
    import skops.io as sio

    options = manifest.get("flavor_options") or {}
    data = files.read(options.get("file", FILE))
    allowed = list(manifest.get("trusted_types") or options.get("trusted_types") or [])
    found = sio.get_untrusted_types(data=data)
    unexpected = sorted(set(found) - set(allowed))
    if unexpected:
        raise InvalidInput(f"refusing to load {files.label}: its skops file holds type(s) the manifest did not "
                           f"record as trusted: {', '.join(unexpected)}")
    return Predictor(sio.loads(data, trusted=allowed))


def wrap(model: Any) -> Predictor:
    return Predictor(model)


class Predictor:
    """Calls the estimator's own predict / predict_proba."""

    def __init__(self, model: Any) -> None:
        self.native = model
        # fitted on a bare array: hand it an array (column names would only earn a warning)
        self._as_array = getattr(model, "n_features_in_", None) is not None and \
            getattr(model, "feature_names_in_", None) is None

    def _input(self, df: Any) -> Any:
        return df.to_numpy() if self._as_array and hasattr(df, "to_numpy") else df

    def predict(self, df: Any) -> Any:
        return self.native.predict(self._input(df))

    def predict_proba(self, df: Any) -> Any:
        return self.native.predict_proba(self._input(df))
