"""The model registry (public name `mloop.models`): model flavors, manifests, signatures,
versions, aliases, evaluation, autologging and batch scoring.

    >>> import mloop
    >>> mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)  # doctest: +SKIP
    >>> mloop.models.set_alias("churn", "champion", version=mv.version)  # doctest: +SKIP
    >>> mloop.models.load("churn@champion").predict(X)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
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


def _resolve_entity(rest: str) -> tuple[str, str]:
    """`models:/…` -> `("model_version", "name/N")` for lineage walks."""
    name, version = resolve(rest)
    return "model_version", f"{name}/{version}"


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the lineage module's own loader, then registers `models:/` in it."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        module.RESOLVERS["models:/"] = _resolve_entity

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real loader
        return getattr(self.inner, name)


class _OnLineageImport(importlib.abc.MetaPathFinder):
    """An import hook that wraps the loader of mloop.tracking.lineage (and of nothing else) whenever
    it is loaded. It stays on sys.meta_path: removing it while another thread walks the list could
    make that thread skip a finder."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if fullname != _LINEAGE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _register_lineage() -> None:
    """Lineage walks resolve `models:/…` here. Register now when the lineage module is loaded, else
    when it first is: importing it loads SQLAlchemy, which a fresh process that only loads a model
    by alias never needs (its lookup is the store's one-row read)."""
    module = sys.modules.get(_LINEAGE)
    if module is not None:
        module.RESOLVERS["models:/"] = _resolve_entity
    elif not any(isinstance(f, _OnLineageImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _OnLineageImport())


_LINEAGE = "mloop.tracking.lineage"
_register_lineage()

__all__ = [
    "Model", "ModelInfo", "ModelVersion", "Signature", "ExtraColumnsWarning", "LibraryVersionWarning",
    "alias_history", "autolog", "clear_cache", "delete", "delete_alias", "evaluate", "from_native", "get",
    "list_models", "list_versions", "load", "log_model", "predict_batch", "register", "resolve", "restore",
    "search", "set_alias", "set_description", "set_tags",
]
