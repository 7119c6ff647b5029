"""`mloop.evaluate`: the standard metrics of a model on labelled data and, inside a run, the same
metrics logged with plots (confusion matrix, ROC and calibration curves, residuals) as artifacts.

Classification: accuracy, precision, recall, f1, roc_auc, log_loss (binary: the positive class is
the manifest's last class; multiclass: macro averages, one-vs-rest AUC). Regression: mae, rmse,
r2, mape. Labels come from the probabilities, so each evaluation costs one model call.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mloop.registry.model import Model
    from mloop.tracking.run import Run

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")


def evaluate(model_or_uri: Any, data: Any, target: str, *, task: str | None = None, run: Run | None = None,
             plots: bool = True, prefix: str = "") -> dict[str, float]:
    """Metrics of a model (a URI, a loaded `Model` or an in-memory estimator) on `data` (a frame with
    the `target` column, or a dataset URI); inside a run they are logged with plots.

    >>> mloop.evaluate("churn@champion", valid_df, target="churned")["roc_auc"]  # doctest: +SKIP
    0.91
    """
    from mloop.registry.model import Model, from_native, load
    from mloop.tracking import fluent

    if isinstance(model_or_uri, str):
        model = load(model_or_uri)
    elif isinstance(model_or_uri, Model):
        model = model_or_uri
    else:
        model = from_native(model_or_uri, task=task)
    frame = _frame(data)
    y_true, proba, labels, pred = _score(model, frame, target, task)
    metrics = _metrics(model, task or model.task, y_true, labels, proba, pred)
    run = run or fluent.active_run()
    if run is not None:
        run.log_metrics({f"{prefix}{k}": v for k, v in metrics.items()})
        run.log_dict(metrics, f"evaluation/{prefix}metrics.json")
        if plots:
            _log_plots(run, model, task or model.task, y_true, labels, proba, pred, prefix)
    return metrics


def compute_metrics(model: Model, data: Any, target: str, task: str | None = None) -> dict[str, float]:
    """The metrics only (no logging)."""
    y_true, proba, labels, pred = _score(model, _frame(data), target, task)
    return _metrics(model, task or model.task, y_true, labels, proba, pred)


def _frame(data: Any) -> pd.DataFrame:
    from mloop.registry.signature import read_table

    return read_table(data)


def _score(model: Model, df: pd.DataFrame, target: str, task: str | None):  # noqa: ANN202
    import numpy as np

    if target not in df.columns:
        raise InvalidInput(f"evaluation data has no target column {target!r} (columns: {list(df.columns)[:30]})")
    if len(df) == 0:
        raise InvalidInput("evaluation data is empty")
    y_true = df[target].to_numpy()
    X = model.prepare(df.drop(columns=[target])) if model.signature else df.drop(columns=[target])
    if (task or model.task) == "classification":
        labels, proba = model.score(X)
        return y_true, proba, labels, labels
    return y_true, None, None, np.asarray(model.predict(X), dtype="float64")


def _metrics(model: Model, task: str, y_true: np.ndarray, labels: Any, proba: Any, pred: Any) -> dict[str, float]:
    from sklearn import metrics as skm

    if task == "classification":
        classes = list(model.classes or [])
        binary = len(classes) == 2
        avg = {"average": "binary", "pos_label": classes[-1]} if binary else {"average": "macro"}
        out = {
            "accuracy": skm.accuracy_score(y_true, labels),
            "precision": skm.precision_score(y_true, labels, zero_division=0, **avg),
            "recall": skm.recall_score(y_true, labels, zero_division=0, **avg),
            "f1": skm.f1_score(y_true, labels, zero_division=0, **avg),
        }
        try:
            if binary:
                out["roc_auc"] = skm.roc_auc_score(y_true == classes[-1], proba[:, 1])
            else:
                out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
        except ValueError:  # a single class in y_true
            out["roc_auc"] = math.nan
        out["log_loss"] = skm.log_loss(y_true, proba / proba.sum(axis=1, keepdims=True), labels=classes)
        return {k: float(v) for k, v in out.items()}
    if task != "regression":
        raise InvalidInput(f"task must be 'classification' or 'regression', got {task!r}")
    y = y_true.astype("float64")
    return {
        "mae": float(skm.mean_absolute_error(y, pred)),
        "rmse": float(math.sqrt(skm.mean_squared_error(y, pred))),
        "r2": float(skm.r2_score(y, pred)),
        "mape": float(skm.mean_absolute_percentage_error(y, pred)),
    }


def _log_plots(run: Run, model: Model, task: str, y_true: Any, labels: Any, proba: Any, pred: Any,
               prefix: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    figures = {}
    if task == "classification":
        from sklearn.metrics import ConfusionMatrixDisplay

        classes = list(model.classes or [])
        fig, ax = plt.subplots(figsize=(5, 4))
        ConfusionMatrixDisplay.from_predictions(y_true, labels, labels=classes, ax=ax, colorbar=False)
        figures["confusion_matrix"] = fig
        if len(classes) == 2 and len(set(np.asarray(y_true).tolist())) == 2:
            from sklearn.calibration import CalibrationDisplay
            from sklearn.metrics import RocCurveDisplay

            positive = np.asarray(y_true) == classes[-1]
            fig, ax = plt.subplots(figsize=(5, 4))
            RocCurveDisplay.from_predictions(positive, proba[:, 1], ax=ax)
            figures["roc_curve"] = fig
            fig, ax = plt.subplots(figsize=(5, 4))
            CalibrationDisplay.from_predictions(positive, proba[:, 1], n_bins=10, ax=ax)
            figures["calibration_curve"] = fig
    else:
        y = np.asarray(y_true, dtype="float64")
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(pred, y - pred, s=4, alpha=0.4)
        ax.axhline(0.0, color="grey", linewidth=1)
        ax.set_xlabel("prediction")
        ax.set_ylabel("residual (actual - prediction)")
        figures["residuals"] = fig
    for name, fig in figures.items():
        try:
            run.log_figure(fig, f"evaluation/{prefix}{name}.png")
        finally:
            plt.close(fig)
