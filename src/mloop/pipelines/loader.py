"""`FILE:NAME` -> a Pipeline: import a Python file as a module and take its attribute NAME
(NAME may be left out when the file defines exactly one pipeline)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from mloop.errors import InvalidInput, NotFound
from mloop.pipelines.language import Pipeline


def load_pipeline(spec: str) -> Pipeline:
    """The pipeline `FILE:NAME` names (FILE a path to a .py file, or an importable module)."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInput("name a pipeline as FILE:NAME, e.g. pipeline.py:churn")
    target, _, name = spec.rpartition(":") if ":" in spec else (spec, "", "")
    module = _import(target)
    if name:
        value = getattr(module, name, None)
        if value is None:
            found = _pipelines(module)
            raise NotFound(f"{target} has no attribute {name!r} (pipelines there: {', '.join(found) or 'none'})")
        if not isinstance(value, Pipeline):
            raise InvalidInput(f"{target}:{name} is a {type(value).__name__}, not a @mloop.pipeline")
    else:
        found = _pipelines(module)
        if len(found) != 1:
            raise InvalidInput(f"{target} defines {len(found)} pipelines ({', '.join(found) or 'none'}); "
                               f"name one as {target}:NAME")
        name = found[0]
        value = getattr(module, name)
    value.source = f"{target}:{name}"
    return value


def _pipelines(module) -> list[str]:  # noqa: ANN001
    return sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))


def _import(target: str):  # noqa: ANN202
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise NotFound(f"no pipeline file {target!r} (from {Path.cwd()})")
        path = path.resolve()
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        stem = path.stem if path.stem.isidentifier() else "pipeline"
        existing = sys.modules.get(stem)
        if existing is not None and getattr(existing, "__file__", None) and Path(existing.__file__).resolve() == path:
            return existing
        name = stem if existing is None else f"{stem}_{hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise InvalidInput(f"cannot import {target!r} as Python")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception:
            sys.modules.pop(name, None)
            raise
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        raise NotFound(f"cannot import pipeline module {target!r}: {exc}") from exc


__all__ = ["load_pipeline"]
