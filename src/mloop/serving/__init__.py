"""The model server: the V2 inference protocol (with Triton's binary tensors), `/predict` and
MLflow's `/invocations`, micro-batching, canary and shadow traffic, hot reload, the prediction log,
an ONNX fast path, and self-contained bundles.

    >>> from mloop.serving import create_app
    >>> app = create_app("churn@champion")  # doctest: +SKIP  (an ASGI app; uvicorn runs it)

From the shell: `mloop serve churn@champion --port 8080`, `mloop build churn@champion -o bundle/`.
"""

from __future__ import annotations

import importlib
from typing import Any

_ATTRS = {
    "create_app": ("mloop.serving.server", "create_app"),
    "serve": ("mloop.serving.server", "serve"),
    "ServeOptions": ("mloop.serving.server", "ServeOptions"),
    "build_bundle": ("mloop.serving.bundle", "build_bundle"),
    "read_predictions": ("mloop.store.serving", "read_predictions"),
    "read_feedback": ("mloop.store.serving", "read_feedback"),
}
__all__ = sorted(_ATTRS)


def __getattr__(name: str) -> Any:
    target = _ATTRS.get(name)
    if target is None:
        raise AttributeError(f"module 'mloop.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value
    return value
