"""Model flavors: how one kind of model is saved into a model directory and loaded back.

Each flavor module exposes `NAME`, `PACKAGES` (distributions whose versions the manifest records),
`detect(model)`, `describe(model) -> (task, classes)`, `save(model, folder, *, trust) -> dict`
(the manifest's `flavor_options`), `load(files, manifest, *, trust) -> Predictor` and
`wrap(model) -> Predictor` (an in-memory model, for evaluation and autologging). A Predictor has
`predict(df)`, `predict_proba(df)` (an n x k array, classifiers) and `native`.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from mloop.errors import InvalidInput

# Detection order: the specific libraries first (their estimators are scikit-learn estimators too).
ORDER = ("xgboost", "lightgbm", "onnx", "sklearn", "pyfunc")


def get(name: str) -> ModuleType:
    """The flavor module called `name`."""
    if name not in ORDER:
        raise InvalidInput(f"unknown model flavor {name!r}; known: {', '.join(ORDER)}")
    return importlib.import_module(f"mloop.registry.flavors.{name}_flavor")


def detect(model: Any, flavor: str | None = None) -> ModuleType:
    """The flavor that saves `model` (or the one named)."""
    if flavor is not None:
        return get(flavor)
    for name in ORDER:
        module = get(name)
        if module.detect(model):
            return module
    raise InvalidInput(
        f"cannot save a {type(model).__module__}.{type(model).__name__}: it is not a scikit-learn, XGBoost, "
        "LightGBM or ONNX model and has no predict(df) method"
    )


def module_roots(model: Any) -> set[str]:
    """Top-level module names of the classes in the model's MRO."""
    return {k.__module__.split(".", 1)[0] for k in type(model).__mro__ if k is not object}


def plain(value: Any) -> Any:
    """numpy scalars as Python scalars (for class labels in YAML/JSON)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
