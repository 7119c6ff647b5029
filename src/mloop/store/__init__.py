"""The metadata store: SQLAlchemy 2 tables, Alembic migrations, one repository class per entity.

Knows nothing about ML. Each room's tables and repositories live in `store/<room>.py`.
"""

from mloop.store.db import Store, get_store, redact
from mloop.store.schema import current_user, metadata, now_ms

__all__ = ["Store", "get_store", "redact", "current_user", "metadata", "now_ms"]
