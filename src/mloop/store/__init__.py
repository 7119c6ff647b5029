"""The metadata store: SQLAlchemy 2 tables, Alembic migrations, one repository class per entity.

Knows nothing about ML. Each room's tables and repositories live in `store/<room>.py`. The names
below load on first use, so `store/registry_lookup.py` (a one-row read with the stdlib driver)
can be imported without SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"Store": "db", "get_store": "db", "redact": "db", "current_user": "schema", "metadata": "schema",
            "now_ms": "schema"}

__all__ = ["Store", "get_store", "redact", "current_user", "metadata", "now_ms"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mloop.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mloop.store.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # for type checkers and IDEs
    from mloop.store.db import Store, get_store, redact  # noqa: F401
    from mloop.store.schema import current_user, metadata, now_ms  # noqa: F401
