"""mloop: one package for the whole machine-learning loop.

The object model, each arrow a row or an edge in one metadata store::

    dataset version ──input──► run ──produced──► model version ◄──alias── @champion
                                │                     │
                          params, metrics,         served
                          tags, artifacts,            ▼
                          environment, git       deployment ──► prediction log ──► monitor
                                                                                    │
                                    pipeline run ◄──────────triggered─────── alert ◄┘

    >>> import mloop
    >>> with mloop.start_run(experiment="churn", params={"C": 1.0}) as run:  # doctest: +SKIP
    ...     run.log_metric("auc", 0.91)

Names are resolved lazily, so `import mloop` stays fast; heavy libraries load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_TRACKING = (
    "Run", "active_run", "delete_run", "end_run", "get_run", "log_artifact", "log_artifacts", "log_dict",
    "log_figure", "log_metric", "log_metrics", "log_param", "log_params", "log_text", "metric_history",
    "restore_run", "search_runs", "set_experiment", "set_tag", "set_tags", "start_run",
)
_ATTRS: dict[str, tuple[str, str | None]] = {name: ("mloop.tracking", name) for name in _TRACKING}
_ATTRS.update({
    "configure": ("mloop.config", "configure"),
    "config": ("mloop.config", None),
    "errors": ("mloop.errors", None),
    "artifacts": ("mloop.artifacts", None),
    "tracking": ("mloop.tracking", None),
    "store": ("mloop.store", None),
})
# Rooms added by later work register here: name -> (module, attribute or None for the module).
# A name is in __all__ once its room's package exists; tests/test_public_api.py pins the list.
_OPTIONAL_ROOMS: dict[str, tuple[str, str | None]] = {
    "models": ("mloop.registry", None),
    "registry": ("mloop.registry", None),
    "data": ("mloop.data", None),
    "validation": ("mloop.validation", None),
    "pipelines": ("mloop.pipelines", None),
    "serving": ("mloop.serving", None),
    "monitoring": ("mloop.monitoring", None),
    "features": ("mloop.features", None),
    "evaluate": ("mloop.registry", "evaluate"),
    "autolog": ("mloop.registry", "autolog"),
    "step": ("mloop.pipelines", "step"),
    "pipeline": ("mloop.pipelines", "pipeline"),
    "gate": ("mloop.pipelines", "gate"),
    "steps": ("mloop.pipelines.steps", None),
    "DatasetRef": ("mloop.pipelines", "DatasetRef"),
}
_ATTRS.update(_OPTIONAL_ROOMS)


def _present(module_name: str) -> bool:
    """True if a room's package is installed (a stat, not an import: `import mloop` stays fast)."""
    import os

    return os.path.isfile(os.path.join(os.path.dirname(__file__), module_name.split(".")[1], "__init__.py"))


__all__ = sorted({
    *_TRACKING, "configure", "config", "errors", "artifacts", "tracking", "__version__",
    *(name for name, (module, _) in _OPTIONAL_ROOMS.items() if _present(module)),
})


def __getattr__(name: str) -> Any:
    target = _ATTRS.get(name)
    if target is None:
        raise AttributeError(f"module 'mloop' has no attribute {name!r}")
    module_name, attr = target
    if module_name == "mloop.data":
        importlib.import_module("mloop.validation")  # it registers its check provider with mloop.data
    module = importlib.import_module(module_name)
    if module_name == "mloop.registry":
        # The registry takes dataset URIs (validation_data=, evaluate) through mloop.data, a room above
        # it: hand it a loader, so a process that only loads models never imports the data room.
        from mloop.registry import signature

        signature.datasets_loader = _data_room
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def _data_room() -> Any:
    importlib.import_module("mloop.validation")
    return importlib.import_module("mloop.data")


def __dir__() -> list[str]:
    return sorted({*globals(), *_ATTRS})


if TYPE_CHECKING:  # for type checkers and IDEs
    from mloop import artifacts, config, errors, tracking  # noqa: F401
    from mloop.config import configure  # noqa: F401
    from mloop.tracking import *  # noqa: F401,F403
