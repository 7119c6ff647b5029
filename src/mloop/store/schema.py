"""The one SQLAlchemy MetaData every room's tables live on, and column types shared by them."""

from __future__ import annotations

import getpass
import os
import time

from sqlalchemy import BigInteger, Integer, MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An auto-incrementing 64-bit id: BIGINT on PostgreSQL, the rowid alias on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def now_ms() -> int:
    """Milliseconds since the epoch, UTC: how every timestamp is stored."""
    return time.time_ns() // 1_000_000


def current_user() -> str:
    """Who is writing: `MLOOP_USER` if set, else the login name."""
    user = os.environ.get("MLOOP_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers)
        return "unknown"
