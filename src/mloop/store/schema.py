"""The one SQLAlchemy MetaData every room's tables live on, and column types shared by them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

from mloop.store.stamps import current_user, now_ms  # noqa: F401 - re-exported: every room imports them here

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
