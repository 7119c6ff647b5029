"""`mloop.autolog()`: patch `fit` of scikit-learn, XGBoost and LightGBM estimators so a plain
training script logs params (`get_params`), training metrics, a signature from the training data
and the model, into the active run or a new one.

Only the outermost `fit` logs: the fits a Pipeline, a search or an ensemble makes inside it (and a
subclass's `super().fit`) pass straight through. The depth counter is process-wide, so fits that a
search runs on other threads count as inner too.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

_lock = threading.Lock()
_depth = 0
_patched: list[tuple[type, Any]] = []
_options: dict[str, Any] = {}


def autolog(*, disable: bool = False, log_models: bool = True, log_training_metrics: bool = True,
            model_name: str = "model") -> None:
    """Turn autologging on (or off with `disable=True`).

    >>> mloop.autolog()  # doctest: +SKIP
    >>> LogisticRegression().fit(X, y)  # a run with params, training metrics and the model
    """
    with _lock:
        for cls, original in reversed(_patched):
            cls.fit = original
        _patched.clear()
        if disable:
            return
        _options.update(log_models=log_models, log_training_metrics=log_training_metrics, model_name=model_name)
        owners = {}
        for cls in _estimator_classes():
            for klass in cls.__mro__:  # a search's fit lives on its base class (BaseSearchCV)
                if "fit" in klass.__dict__ and klass.__module__.split(".", 1)[0] in ("sklearn", "xgboost", "lightgbm"):
                    owners[klass] = klass.__dict__["fit"]
        for klass, original in owners.items():
            if getattr(original, "_mloop_autolog", False) or not callable(original):
                continue
            klass.fit = _wrap(original)
            _patched.append((klass, original))


def _estimator_classes() -> list[type]:
    import warnings

    from sklearn.utils import all_estimators

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classes = [cls for _, cls in all_estimators()]
    try:
        import xgboost as xgb

        classes += [xgb.XGBModel, xgb.XGBClassifier, xgb.XGBRegressor, xgb.XGBRFClassifier, xgb.XGBRFRegressor]
    except ImportError:
        pass
    try:
        import lightgbm as lgb

        classes += [lgb.LGBMModel, lgb.LGBMClassifier, lgb.LGBMRegressor]
    except ImportError:
        pass
    return classes


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self, *args, **kwargs):  # noqa: ANN001, ANN202
        global _depth
        with _lock:
            outer = _depth == 0
            _depth += 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            with _lock:
                _depth -= 1
        if outer:
            X = args[0] if args else kwargs.get("X")
            y = args[1] if len(args) > 1 else kwargs.get("y")
            try:
                _log_fit(self, X, y)
            except Exception as exc:  # noqa: BLE001 - logging must never break training
                log.warning("mloop autolog could not log %s: %s", type(self).__name__, exc)
        return result

    fit._mloop_autolog = True
    return fit


def _log_fit(estimator: Any, X: Any, y: Any) -> None:
    from mloop.errors import Conflict
    from mloop.tracking import fluent

    run = fluent.active_run()
    owned = run is None
    if owned:
        run = fluent.start_run(name=f"autolog-{type(estimator).__name__}", tags={"autolog": "true"})
    try:
        try:
            run.log_params(_params(estimator))
        except Conflict as exc:
            log.warning("mloop autolog: params not logged again: %s", exc)
        if _options.get("log_training_metrics") and y is not None:
            run.log_metrics({f"training_{k}": v for k, v in _training_metrics(estimator, X, y).items()})
        if _options.get("log_models"):
            import pandas as pd

            example = X.head(5) if isinstance(X, pd.DataFrame) else (X[:5] if hasattr(X, "shape") and
                                                                     len(getattr(X, "shape", ())) == 2 else None)
            run.log_model(estimator, name=_options.get("model_name", "model"), input_example=example)
    finally:
        if owned:
            run.end()


def _params(estimator: Any) -> dict[str, str]:
    out = {}
    for key, value in estimator.get_params(deep=True).items():
        if hasattr(value, "get_params"):
            value = type(value).__name__
        text = str(value)
        out[key[:250]] = text if len(text) <= 6000 else text[:6000] + "..."
    return out


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    import numpy as np

    from mloop.registry.evaluation import _metrics
    from mloop.registry.model import from_native

    model = from_native(estimator)
    y_true = np.asarray(y).ravel()
    if model.task == "classification" and hasattr(estimator, "predict_proba"):
        proba = np.asarray(estimator.predict_proba(X), dtype="float64")
        labels = np.asarray(model.classes)[proba.argmax(axis=1)]
        metrics = _metrics(model, "classification", y_true, labels, proba, labels)
    elif model.task == "regression":
        metrics = _metrics(model, "regression", y_true, None, None, np.asarray(estimator.predict(X), dtype="float64"))
    else:
        metrics = {}
    if hasattr(estimator, "score"):
        try:
            metrics["score"] = float(estimator.score(X, y))
        except Exception:  # noqa: BLE001 - estimators without a usable score
            pass
    return metrics
