"""LightGBM (the scikit-learn wrappers and raw Boosters), saved as LightGBM's text model format.

A loaded model is a `lightgbm.Booster`; class labels come from the manifest's ordered `classes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mloop.registry.flavors import module_roots, plain

NAME = "lightgbm"
PACKAGES = ("lightgbm", "numpy", "scipy")
FILE = "model.txt"


def detect(model: Any) -> bool:
    return "lightgbm" in module_roots(model)


def _booster(model: Any) -> Any:
    return getattr(model, "booster_", model)


def describe(model: Any) -> tuple[str, list | None]:
    import lightgbm as lgb

    if isinstance(model, lgb.LGBMClassifier):
        return "classification", [plain(c) for c in model.classes_]
    if isinstance(model, lgb.LGBMModel):
        return "regression", None
    objective = str(model.params.get("objective", "")) if hasattr(model, "params") else ""
    if objective.startswith(("binary", "multiclass", "softmax", "multiclassova")):
        n = model.num_model_per_iteration()
        return "classification", list(range(max(n, 2)))
    return "regression", None


def save(model: Any, folder: Path, *, trust: bool = False) -> dict:
    (folder / FILE).write_text(_booster(model).model_to_string())
    return {"file": FILE, "format": "text", "class": type(model).__name__}


def load(files: Any, manifest: dict, *, trust: bool = False) -> Predictor:
    import lightgbm as lgb

    options = manifest.get("flavor_options") or {}
    booster = lgb.Booster(model_str=files.read(options.get("file", FILE)).decode("utf-8"))
    return Predictor(booster, manifest.get("task"), manifest.get("classes"))


def wrap(model: Any) -> Predictor:
    task, classes = describe(model)
    return Predictor(_booster(model), task, classes)


class Predictor:
    def __init__(self, booster: Any, task: str | None, classes: list | None) -> None:
        self.native = booster
        self.task = task
        self.classes = classes

    def predict_proba(self, df: Any) -> Any:
        import numpy as np

        out = np.asarray(self.native.predict(df))
        return np.column_stack([1.0 - out, out]) if out.ndim == 1 else out

    def predict(self, df: Any) -> Any:
        import numpy as np

        if self.task == "classification":
            return np.asarray(self.classes, dtype=object if _mixed(self.classes) else None)[
                self.predict_proba(df).argmax(axis=1)]
        return np.asarray(self.native.predict(df))


def _mixed(classes: list) -> bool:
    return len({type(c) for c in classes}) > 1
