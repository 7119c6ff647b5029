"""Cache keys: what a step's result depends on, hashed.

A key hashes the step's source; the project's own functions, classes and modules it references,
transitively, by source; closure values; the parameters as canonical JSON (a parameter that is not
JSON-serialisable is an InvalidInput — never pickled into a key); the digests of its inputs; and its
`cache_version`. A module counts by its distribution's version only if its file lives under
site-packages or the standard library; everything else (editable installs included) is project code.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import site
import sys
import sysconfig
import textwrap
import types
from functools import lru_cache
from typing import Any

from mloop.artifacts.hashing import digest_of_bytes
from mloop.errors import InvalidInput

KEY_SCHEMA = 1


def canonical_json(value: Any, *, what: str = "value") -> str:
    """Sorted keys, no whitespace, numpy scalars as numbers; anything else JSON cannot hold is refused."""
    try:
        return json.dumps(_plain(value, what), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not JSON-serialisable ({exc})") from exc


def _plain(value: Any, what: str) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"$float": repr(value)}
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, what) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidInput(f"{what} has a non-string key {k!r}; JSON keys are strings")
            out[k] = _plain(v, what)
        return out
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return _plain(item(), what)
    raise InvalidInput(
        f"{what} is a {type(value).__module__}.{type(value).__qualname__}, which is not JSON-serialisable: "
        "step parameters must be JSON values (pass data between steps as step outputs, or as a dataset URI)"
    )


# -- where code comes from ---------------------------------------------------------------------
@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # virtualenv's old site module
        pass
    user = getattr(site, "getusersitepackages", lambda: None)()
    if user:
        roots.add(os.path.realpath(user))
    roots.add(os.path.realpath(sys.base_prefix) + os.sep + "lib")
    return tuple(sorted(roots))


@lru_cache(maxsize=4096)
def _is_library_file(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == r or real.startswith(r + os.sep) for r in _library_roots()) or "site-packages" in real


def is_project_module(module: types.ModuleType | None) -> bool:
    """True for the project's own code (hashed by source); False for stdlib and installed libraries."""
    if module is None:
        return False
    if module.__name__.split(".")[0] == "mloop":
        return False  # mloop's own API counts by its version (its lazy attributes would make keys unstable)
    path = getattr(module, "__file__", None)
    if not path:
        return module.__name__ == "__main__"
    return not _is_library_file(path)


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


@lru_cache(maxsize=1024)
def library_version(module_name: str) -> str:
    """`dist==version` for an installed module, `python==X.Y` for the standard library."""
    top = module_name.split(".")[0]
    if top == "mloop":
        from mloop import __version__

        return f"mloop=={__version__}"
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return f"python=={sys.version_info.major}.{sys.version_info.minor}"
    from importlib.metadata import PackageNotFoundError, version

    for dist in _distributions().get(top, []):
        try:
            return f"{dist}=={version(dist)}"
        except PackageNotFoundError:
            continue
    mod = sys.modules.get(top)
    return f"{top}=={getattr(mod, '__version__', 'unknown')}"


# -- source hashing --------------------------------------------------------------------------------
# By the code object's identity (equal code objects can come from different source: comments), keeping
# the object alive so its id is not reused.
_source_cache: dict[int, tuple[types.CodeType, str]] = {}


def _source_of_code(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    if code is not None and id(code) in _source_cache:
        return _source_cache[id(code)][1]
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        text = _code_text(code) if code is not None else repr(fn)
    if code is not None:
        _source_cache[id(code)] = (code, text)
    return text


def _code_text(code: types.CodeType) -> str:
    parts = [code.co_code.hex(), repr(code.co_names), repr(code.co_varnames)]
    for const in code.co_consts:
        parts.append(_code_text(const) if isinstance(const, types.CodeType) else repr(const))
    return "|".join(parts)


def _names_of(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_of(const)
    return names


class CodeHasher:
    """Fingerprints of functions and what they reference; memoised for one pipeline run."""

    def __init__(self) -> None:
        self._memo: dict[int, str] = {}
        self._keep: list[Any] = []  # keeps memoised objects alive so their ids stay unique
        self._active: set[int] = set()

    def function(self, fn: Any) -> str:
        """The digest of a function: its source, the project code it reaches, its closure values."""
        from mloop.pipelines.language import Step

        if isinstance(fn, Step):
            fn = fn.fn
        key = id(fn)
        if key in self._memo:
            return self._memo[key]
        if key in self._active:  # recursion (a function reaching itself)
            return f"recursive:{getattr(fn, '__qualname__', '?')}"
        self._active.add(key)
        try:
            parts = [f"fn:{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}", _source_of_code(fn)]
            code = getattr(fn, "__code__", None)
            if code is not None:
                names = _names_of(code)
                globals_ = getattr(fn, "__globals__", {})
                for name in sorted(names):
                    if name in globals_:
                        parts.append(f"g:{name}={self.value(globals_[name], names)}")
                for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
                    try:
                        contents = cell.cell_contents
                    except ValueError:  # an empty cell
                        contents = None
                    parts.append(f"c:{name}={self.value(contents, names, closure=True)}")
            digest = digest_of_bytes("\n".join(parts).encode())
        finally:
            self._active.discard(key)
        self._memo[key] = digest
        self._keep.append(fn)
        return digest

    def klass(self, cls: type) -> str:
        key = id(cls)
        if key in self._memo:
            return self._memo[key]
        if key in self._active:
            return f"recursive:{cls.__qualname__}"
        self._active.add(key)
        try:
            try:
                source = textwrap.dedent(inspect.getsource(cls))
            except (OSError, TypeError):
                source = cls.__qualname__
            parts = [f"cls:{cls.__module__}.{cls.__qualname__}", source]
            for name, member in sorted(vars(cls).items()):
                target = member.__func__ if isinstance(member, staticmethod | classmethod) else member
                if isinstance(target, types.FunctionType):
                    parts.append(f"m:{name}={self.function(target)}")
            digest = digest_of_bytes("\n".join(parts).encode())
        finally:
            self._active.discard(key)
        self._memo[key] = digest
        self._keep.append(cls)
        return digest

    def value(self, value: Any, names: set[str], *, closure: bool = False) -> str:
        """How a referenced global or closure value enters the key."""
        from mloop.pipelines.language import Pipeline, Step

        if isinstance(value, Step):
            return "step:" + self.function(value.fn)
        if isinstance(value, Pipeline):
            return f"pipeline:{value.name}"
        if isinstance(value, types.ModuleType):
            if not is_project_module(value):
                return "lib:" + library_version(value.__name__)
            # project module: the attributes this code could reach through it (`helpers.clean`)
            attrs = [f"{n}={self.value(value.__dict__[n], names)}" for n in sorted(names)
                     if n in value.__dict__ and not isinstance(value.__dict__[n], types.ModuleType)]
            return f"mod:{value.__name__}[{';'.join(attrs)}]"
        if isinstance(value, types.FunctionType):
            module = sys.modules.get(value.__module__)
            if module is None or is_project_module(module):
                return "fn:" + self.function(value)
            return "lib:" + library_version(value.__module__)
        if isinstance(value, type):
            module = sys.modules.get(value.__module__)
            if module is not None and is_project_module(module):
                return "cls:" + self.klass(value)
            return "lib:" + library_version(value.__module__) + ":" + value.__qualname__
        if isinstance(value, types.BuiltinFunctionType | types.MethodType):
            owner = getattr(value, "__module__", None) or type(value).__module__
            if isinstance(value, types.MethodType) and isinstance(value.__func__, types.FunctionType):
                return "method:" + self.value(value.__func__, names)
            return "lib:" + library_version(owner or "builtins")
        if closure or _immutable(value):
            try:
                return "json:" + canonical_json(value)
            except InvalidInput:
                pass
        elif isinstance(value, list | dict | set):
            return f"mutable:{type(value).__qualname__}"  # module state (a registry, a counter) is not an input
        if closure:
            try:
                import cloudpickle

                return "pickle:" + digest_of_bytes(cloudpickle.dumps(value))
            except Exception:  # noqa: BLE001  (an unpicklable closure value: only its type counts)
                pass
        module_name = type(value).__module__
        module = sys.modules.get(module_name)
        if module is not None and is_project_module(module):
            return "obj:" + self.klass(type(value))
        return f"obj:{library_version(module_name)}:{type(value).__qualname__}"


def _immutable(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return True
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    return False


def cache_key(*, step_name: str, code: str, cache_version: Any, params_json: str, inputs: list[str],
              outputs: tuple[str, ...], extra: Any = None) -> str:
    """The cache key of one step call."""
    payload = {"schema": KEY_SCHEMA, "step": step_name, "code": code, "cache_version": cache_version,
               "params": params_json, "inputs": inputs, "outputs": list(outputs)}
    if extra is not None:
        payload["extra"] = extra
    return digest_of_bytes(canonical_json(payload).encode())


__all__ = ["CodeHasher", "cache_key", "canonical_json", "is_project_module", "library_version"]
