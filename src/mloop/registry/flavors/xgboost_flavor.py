"""XGBoost (the scikit-learn wrappers and raw Boosters), saved in XGBoost's own UBJSON format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.registry.flavors import module_roots, plain

NAME = "xgboost"
PACKAGES = ("xgboost", "numpy", "scipy")
FILE = "model.ubj"
_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor", "Booster")


def detect(model: Any) -> bool:
    return "xgboost" in module_roots(model)


def _booster_task(booster: Any) -> tuple[str, list | None]:
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    if objective.startswith("binary:"):
        return "classification", [0, 1]
    if objective.startswith("multi:"):
        n = int(json.loads(booster.save_config())["learner"]["learner_model_param"]["num_class"])
        return "classification", list(range(n))
    return "regression", None


def describe(model: Any) -> tuple[str, list | None]:
    import xgboost as xgb

    if isinstance(model, xgb.Booster):
        return _booster_task(model)
    if isinstance(model, xgb.XGBClassifier):
        return "classification", [plain(c) for c in model.classes_]
    return "regression", None


def save(model: Any, folder: Path, *, trust: bool = False) -> dict:
    cls = type(model).__name__
    if cls not in _CLASSES:
        raise InvalidInput(f"the xgboost flavor saves {', '.join(_CLASSES)}, not {cls}")
    model.save_model(str(folder / FILE))
    return {"file": FILE, "format": "ubj", "class": cls}


def load(files: Any, manifest: dict, *, trust: bool = False) -> Any:
    import xgboost as xgb

    options = manifest.get("flavor_options") or {}
    cls = options.get("class", "Booster")
    if cls not in _CLASSES:
        raise InvalidInput(f"{files.label}: unknown xgboost class {cls!r} in the manifest")
    data = bytearray(files.read(options.get("file", FILE)))
    model = getattr(xgb, cls)()
    model.load_model(data)
    return wrap(model)


def wrap(model: Any) -> Any:
    import xgboost as xgb

    return BoosterPredictor(model) if isinstance(model, xgb.Booster) else WrapperPredictor(model)


class WrapperPredictor:
    def __init__(self, model: Any) -> None:
        self.native = model

    def predict(self, df: Any) -> Any:
        return self.native.predict(df)

    def predict_proba(self, df: Any) -> Any:
        return self.native.predict_proba(df)


class BoosterPredictor:
    def __init__(self, booster: Any) -> None:
        import xgboost as xgb

        self.native = booster
        self._xgb = xgb
        self.task, self.classes = _booster_task(booster)

    def _raw(self, df: Any) -> Any:
        return self.native.predict(self._xgb.DMatrix(df))

    def predict(self, df: Any) -> Any:
        out = self._raw(df)
        if self.task == "classification":
            import numpy as np

            proba = _as_matrix(out)
            return np.asarray(self.classes)[proba.argmax(axis=1)]
        return out

    def predict_proba(self, df: Any) -> Any:
        return _as_matrix(self._raw(df))


def _as_matrix(out: Any) -> Any:
    import numpy as np

    out = np.asarray(out)
    if out.ndim == 1:
        return np.column_stack([1.0 - out, out])
    return out
