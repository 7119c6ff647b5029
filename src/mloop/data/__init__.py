"""Dataset versions: content-addressed snapshots of files, folders and tables, with profiles.

    >>> import mloop
    >>> dv = mloop.data.add("data/train.parquet", name="churn-train")   # doctest: +SKIP
    >>> mloop.data.get("churn-train@latest").to_pandas()                # doctest: +SKIP
    >>> mloop.data.diff("churn-train@1", "churn-train@2").to_dict()     # doctest: +SKIP
    >>> mloop.data.profile(df).columns["age"]["mean"]                   # doctest: +SKIP

Names resolve lazily: `mloop data status` needs neither the database nor the blob store's
libraries, so importing this package costs nothing until a function is used.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "add": "versions", "get": "versions", "use": "versions", "resolve": "versions", "delete": "versions",
    "restore": "versions", "DatasetVersion": "versions", "list_datasets": "versions",
    "log_versions": "versions", "parse_uri": "versions",
    "DatasetDiff": "diff", "Profile": "profile",
    "register_check_provider": "checks", "unregister_check_provider": "checks",
    "remote_add": "remotes", "remote_remove": "remotes", "remote_list": "remotes", "push": "remotes",
    "pull": "remotes", "gc": "garbage",
}
__all__ = sorted({*_EXPORTS, "checkout", "diff", "profile", "status"})

# Functions named like their modules are bound eagerly (the modules are light), so a later import
# of the module cannot shadow the function on the package.
from mloop.data.checkout import checkout  # noqa: E402, F401
from mloop.data.diff import diff  # noqa: E402, F401
from mloop.data.profile import profile  # noqa: E402, F401
from mloop.data.status import status  # noqa: E402, F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mloop.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


# Lineage walks resolve `datasets:/…` through mloop.data.versions; when lineage is already loaded,
# register now (cheap: the database layer is loaded then anyway).
if "mloop.tracking.lineage" in sys.modules:
    importlib.import_module("mloop.data.versions")

if TYPE_CHECKING:  # for type checkers and IDEs
    from mloop.data.checks import register_check_provider, unregister_check_provider  # noqa: F401
    from mloop.data.diff import DatasetDiff  # noqa: F401
    from mloop.data.garbage import gc  # noqa: F401
    from mloop.data.profile import Profile  # noqa: F401
    from mloop.data.remotes import pull, push, remote_add, remote_list, remote_remove  # noqa: F401
    from mloop.data.versions import (  # noqa: F401
        DatasetVersion,
        add,
        delete,
        get,
        list_datasets,
        log_versions,
        parse_uri,
        resolve,
        restore,
        use,
    )
