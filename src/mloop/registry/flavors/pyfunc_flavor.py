"""`pyfunc`: any object with `predict(df)` (and optional `predict_proba(df)`, `classes`, and
`load(context)`), saved with cloudpickle. Loading runs arbitrary code, so it needs `trust=True`
or `MLOOP_TRUST_PICKLE=1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.registry.flavors import plain

NAME = "pyfunc"
PACKAGES = ("cloudpickle",)
FILE = "python_model.pkl"


@dataclass(frozen=True)
class Context:
    """What `load(context)` receives: the model's folder (verified copy) and its manifest."""

    path: Path
    manifest: dict


def detect(model: Any) -> bool:
    return callable(getattr(model, "predict", None))


def describe(model: Any) -> tuple[str, list | None]:
    classes = getattr(model, "classes", None)
    if classes is None:
        classes = getattr(model, "classes_", None)
    if classes is not None and callable(getattr(model, "predict_proba", None)):
        return "classification", [plain(c) for c in classes]
    return str(getattr(model, "task", None) or "regression"), None


def save(model: Any, folder: Path, *, trust: bool = False) -> dict:
    import cloudpickle

    try:
        data = cloudpickle.dumps(model)
    except Exception as exc:
        raise InvalidInput(f"cannot pickle this {type(model).__name__}: {exc}") from exc
    (folder / FILE).write_bytes(data)
    return {"file": FILE, "serializer": "cloudpickle", "class": f"{type(model).__module__}.{type(model).__qualname__}"}


def load(files: Any, manifest: dict, *, trust: bool = False) -> Predictor:
    import cloudpickle

    options = manifest.get("flavor_options") or {}
    model = cloudpickle.loads(files.read(options.get("file", FILE)))
    if callable(getattr(model, "load", None)):
        model.load(Context(path=files.folder(), manifest=manifest))
    return Predictor(model)


def wrap(model: Any) -> Predictor:
    return Predictor(model)


class Predictor:
    def __init__(self, model: Any) -> None:
        self.native = model

    def predict(self, df: Any) -> Any:
        return self.native.predict(df)

    def predict_proba(self, df: Any) -> Any:
        fn = getattr(self.native, "predict_proba", None)
        if fn is None:
            raise InvalidInput("this pyfunc model has no predict_proba")
        return fn(df)
