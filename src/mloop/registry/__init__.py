"""The model registry (public name `mloop.models`): model flavors, manifests, signatures,
versions, aliases, evaluation, autologging and batch scoring.

    >>> import mloop
    >>> mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)  # doctest: +SKIP
    >>> mloop.models.set_alias("churn", "champion", version=mv.version)  # doctest: +SKIP
    >>> mloop.models.load("churn@champion").predict(X)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mloop.registry.model import Model, clear_cache, from_native, load
from mloop.registry.records import ModelInfo, ModelVersion
from mloop.registry.requirements import LibraryVersionWarning
from mloop.registry.signature import ExtraColumnsWarning, Signature
from mloop.registry.versions import (
    alias_history,
    delete,
    delete_alias,
    get,
    list_models,
    list_versions,
    register,
    resolve,
    restore,
    search,
    set_alias,
    set_description,
    set_tags,
)

# Loaded on first use: a process that only loads models never imports them.
_LAZY = {"autolog": "autologging", "evaluate": "evaluation", "log_model": "save"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop.registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mloop.registry.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


if TYPE_CHECKING:  # for type checkers and IDEs
    from mloop.registry.autologging import autolog  # noqa: F401
    from mloop.registry.evaluation import evaluate  # noqa: F401
    from mloop.registry.save import log_model  # noqa: F401


def predict_batch(uri: str, src: str, dst: str, *, batch_rows: int = 65_536, keep: list[str] | str | None = None,
                  progress: bool = False, trust: bool = False) -> dict:
    """Score a parquet/CSV file or folder with the model at `uri` into a parquet file (streamed)."""
    return load(uri, trust=trust).predict_batch(src, dst, batch_rows=batch_rows, keep=keep, progress=progress)


def resolve_entity(rest: str) -> tuple[str, str]:
    """`models:/…` -> `("model_version", "name/N")` for lineage walks (tracking.lineage finds it)."""
    name, version = resolve(rest)
    return "model_version", f"{name}/{version}"


__all__ = [
    "Model", "ModelInfo", "ModelVersion", "Signature", "ExtraColumnsWarning", "LibraryVersionWarning",
    "alias_history", "autolog", "clear_cache", "delete", "delete_alias", "evaluate", "from_native", "get",
    "list_models", "list_versions", "load", "log_model", "predict_batch", "register", "resolve", "restore",
    "search", "set_alias", "set_description", "set_tags",
]
