"""What a model needs installed: requirements from the flavor's imports and the model's own
classes, with installed versions read through importlib.metadata (no subprocess), and the check
at load that warns when installed versions differ from the manifest's.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata
from typing import Any


class LibraryVersionWarning(UserWarning):
    """An installed library's version differs from the one the model was saved with."""


def installed(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def listed(dist: str) -> str | None:
    """The installed version of a distribution as its `name-version.dist-info` folder on sys.path
    names it (the listing the run's environment record already made: no METADATA parsing), else
    from importlib.metadata."""
    from mloop.tracking.environment import installed_packages

    found = installed_packages().get(re.sub(r"[-_.]+", "-", dist).lower())
    return found if found is not None else installed(dist)


@lru_cache(maxsize=1)
def _dist_of_module() -> dict[str, list[str]]:
    return metadata.packages_distributions()


_KNOWN = {"sklearn": "scikit-learn", "yaml": "PyYAML", "PIL": "Pillow", "skimage": "scikit-image"}
DIST_OF_MODULE = _KNOWN


def _dists_of(root: str, version_of: Callable[[str], str | None] | None = None) -> list[str]:
    """The distributions providing a top-level module: a direct name match first (one metadata
    lookup), the full module -> distribution scan only for the rest."""
    name = _KNOWN.get(root, root)
    if (version_of or installed)(name) is not None:
        return [name]
    return _dist_of_module().get(root, [])


def _object_modules(model: Any, limit: int = 2000) -> set[str]:
    """Top-level modules of the classes reachable from the model (estimator params, steps, attributes)."""
    seen: set[int] = set()
    roots: set[str] = set()
    stack = [model]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | bool):
            continue
        seen.add(id(obj))
        for klass in type(obj).__mro__:
            if klass is not object:
                roots.add(klass.__module__.split(".", 1)[0])
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif hasattr(obj, "get_params"):
            try:
                stack.extend(obj.get_params(deep=False).values())
            except Exception:  # noqa: BLE001 - an estimator whose params cannot be read
                pass
            for name in ("steps", "transformers_", "estimators_", "best_estimator_", "estimator_"):
                value = getattr(obj, name, None)
                if value is not None:
                    stack.append(value)
        elif hasattr(obj, "__dict__") and type(obj).__module__.split(".", 1)[0] not in ("numpy", "pandas", "scipy"):
            stack.extend(vars(obj).values())
    return roots


def requirements(model: Any, packages: tuple[str, ...], known: dict[str, str] | None = None) -> list[str]:
    """`dist==version` for the flavor's packages and every distribution the model's classes come from.
    `known`: installed versions already read (e.g. `versions(packages)`), each distribution is read once."""
    found: dict[str, str | None] = dict(known or {})

    def version_of(dist: str) -> str | None:
        if dist not in found:
            found[dist] = listed(dist)
        return found[dist]

    dists = list(packages)
    stdlib = sys.stdlib_module_names
    for root in sorted(_object_modules(model)):
        if root in stdlib or root in ("builtins", "__main__", "mloop") or root.startswith("_"):
            continue
        dists.extend(_dists_of(root, version_of))
    out, seen = [], set()
    for dist in dists:
        key = dist.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        version = version_of(dist)
        if version is not None:
            out.append(f"{dist}=={version}")
    return out


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the flavor's packages."""
    return {p: v for p in packages if (v := listed(p)) is not None}


def check(manifest: dict, label: str, *, known: dict[str, str] | None = None) -> None:
    """Warn, naming both versions, for each library whose installed version differs from the manifest's.
    With `known` (installed versions already known, e.g. from a load-cache entry), only those are compared."""
    for dist, saved in (manifest.get("libraries") or {}).items():
        if known is not None and dist not in known:
            continue
        now = known[dist] if known is not None else installed(dist)
        if now is not None and now != saved:
            warnings.warn(f"{label} was saved with {dist} {saved}, but {dist} {now} is installed; "
                          "predictions may differ", LibraryVersionWarning, stacklevel=3)
