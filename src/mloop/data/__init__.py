"""Dataset versions: content-addressed snapshots of files, folders and tables, with profiles.

    >>> import mloop
    >>> dv = mloop.data.add("data/train.parquet", name="churn-train")   # doctest: +SKIP
    >>> mloop.data.get("churn-train@latest").to_pandas()                # doctest: +SKIP
    >>> mloop.data.profile(df).columns["age"]["mean"]                   # doctest: +SKIP
"""

from mloop.data.profile import Profile, profile

__all__ = ["Profile", "profile"]
