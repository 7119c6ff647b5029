"""Prometheus metrics of a model server: requests, errors by code, latency, batch sizes, the model
versions being served, the prediction distribution and the prediction log's written/dropped rows.

With `--workers N` the server sets `PROMETHEUS_MULTIPROC_DIR` before the workers start, and every
worker's values are summed by `prometheus_client.multiprocess` at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServerMetrics:
    """The server's metric families; children for the hot path are cached per label set."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = multiprocess()
        # In multiprocess mode values live in files; the families still need some registry.
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("mloop_requests", "Inference requests answered, by route and model version",
                                ["route", "version"], registry=reg)
        self.errors = Counter("mloop_errors", "Requests answered with an error, by route and HTTP status",
                              ["route", "code"], registry=reg)
        self.latency = Histogram("mloop_request_latency_seconds", "Time to answer an inference request",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=reg)
        self.rows = Counter("mloop_rows", "Rows predicted, by model version", ["version"], registry=reg)
        self.batch = Histogram("mloop_batch_rows", "Rows per model call", buckets=BATCH_BUCKETS, registry=reg)
        gauge_kw: dict[str, Any] = {"multiprocess_mode": "max"} if self.multiprocess else {}
        self.model_version = Gauge("mloop_model_version", "1 for each model version being served, by role",
                                   ["model", "version", "role"], registry=reg, **gauge_kw)
        self.predictions = Counter("mloop_predictions", "Predicted classes (classifiers) by version",
                                   ["version", "label"], registry=reg)
        self.prediction_value = Histogram("mloop_prediction_value", "Predicted values (regressors)",
                                          ["version"], registry=reg,
                                          buckets=(-1e6, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e6))
        self.log_rows = Counter("mloop_log_rows", "Prediction-log rows written", registry=reg)
        self.log_dropped = Counter("mloop_log_dropped_rows", "Prediction-log rows dropped (queue full or "
                                   "write failed)", registry=reg)
        self.feedback = Counter("mloop_feedback", "Feedback labels received", registry=reg)
        self._children: dict[tuple, Any] = {}
        self._answer: dict[tuple[str, str], tuple] = {}
        self._rows: dict[str, Callable[[float], None]] = {}
        self._label_inc: dict[tuple[str, Any], Callable[[], None]] = {}

    def child(self, family: Any, *labels: str) -> Any:
        key = (id(family), *labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = family.labels(*labels)
        return c

    def request(self, route: str, version: str, latency: float) -> None:
        """Count one answered request and its latency (the hot path: bound methods of cached
        children, no label tuples built per request)."""
        bound = self._answer.get((route, version))
        if bound is None:
            bound = self._answer[route, version] = (self.requests.labels(route, version).inc,
                                                     self.latency.labels(route).observe)
        bound[0]()
        bound[1](latency)

    def predicted(self, version: str, n: int, pred: Any, classification: bool) -> None:
        """Count `n` predicted rows and their distribution (one request's, or a whole batch's)."""
        rows = self._rows.get(version)
        if rows is None:
            rows = self._rows[version] = self.rows.labels(version).inc
        rows(n)
        if classification and len(pred) == 1:
            key = (version, pred[0])
            inc = self._label_inc.get(key)
            if inc is None:
                inc = self._label_inc[key] = self.child(self.predictions, version, str(pred[0])).inc
            inc()
        else:
            self.observe_predictions(version, pred, classification)

    def served(self, model: str, version: str | None, role: str, on: bool = True) -> None:
        self.model_version.labels(model, version or "", role).set(1 if on else 0)

    def observe_predictions(self, version: str, pred: Any, classification: bool) -> None:
        if classification:
            if len(pred) == 1:
                self.child(self.predictions, version, str(pred[0])).inc()
                return
            import numpy as np

            try:  # unique on the labels' own dtype, then one str() per class (not one per row)
                labels, counts = np.unique(pred, return_counts=True)
            except TypeError:  # mixed-type object labels
                labels, counts = np.unique(pred.astype(str), return_counts=True)
            for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
                self.child(self.predictions, version, str(label)).inc(count)
        else:
            hist = self.child(self.prediction_value, version)
            for v in pred.tolist()[:1000]:
                hist.observe(v)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess as mp

            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
