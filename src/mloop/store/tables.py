"""Imports every room's table module so `metadata` is complete (for Alembic and schema tests).

A room that adds `store/<room>.py` adds one import line here.
"""

from mloop.store import data, lineage, pipelines, registry, serving, tracking, validation  # noqa: F401
from mloop.store.schema import metadata

__all__ = ["metadata"]
