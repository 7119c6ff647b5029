"""The local hash cache, `$MLOOP_HOME/cache/hashes.db`: file identity -> blake3 digest.

A file is known by `(device, inode, size, mtime_ns)`; a hit costs one `stat`, not a read. An entry
whose mtime lies within 2 s of when it was recorded is not trusted (the file may have been
written again within the filesystem's timestamp granularity, as git's "racy" index entries), so
such a file is hashed again and re-recorded. This is a machine-local cache, not metadata: it is a
plain SQLite file read with the standard library, and losing it only costs re-hashing.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

RACY_NS = 2_000_000_000
_BATCH = 900  # SQLite's bound-parameter limit is 999 on old builds

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    recorded_ns INTEGER NOT NULL,
    PRIMARY KEY (dev, ino)
) WITHOUT ROWID
"""


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """The identity the cache is keyed by."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class HashCache:
    """Look up and record digests by file identity; open with `HashCache.open()` (the home's cache)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    @classmethod
    def open(cls) -> HashCache:
        from mloop.config import get_settings

        return cls(get_settings().home / "cache" / "hashes.db")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, stats: Iterable[os.stat_result]) -> list[str | None]:
        """Trusted digests for each stat (None where unknown, changed or racy)."""
        stats = list(stats)
        if self._conn.execute("SELECT 1 FROM hashes LIMIT 1").fetchone() is None:
            return [None] * len(stats)
        found: dict[tuple[int, int], tuple[int, int, str, int]] = {}
        keys = [(st.st_dev, st.st_ino) for st in stats]
        inos = sorted({k[1] for k in keys})
        for i in range(0, len(inos), _BATCH):
            chunk = inos[i: i + _BATCH]
            rows = self._conn.execute(
                f"SELECT dev, ino, size, mtime_ns, digest, recorded_ns FROM hashes WHERE ino IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for dev, ino, size, mtime_ns, digest, recorded_ns in rows:
                found[(dev, ino)] = (size, mtime_ns, digest, recorded_ns)
        out: list[str | None] = []
        for st, key in zip(stats, keys, strict=True):
            hit = found.get(key)
            if (
                hit is not None
                and hit[0] == st.st_size
                and hit[1] == st.st_mtime_ns
                and hit[3] - hit[1] >= RACY_NS
            ):
                out.append(hit[2])
            else:
                out.append(None)
        return out

    def record(self, items: Iterable[tuple[os.stat_result, str]]) -> None:
        """Remember `(stat, digest)` pairs (the stat taken before the content was read)."""
        now = time.time_ns()
        rows = [(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest, now) for st, digest in items]
        if not rows:
            return
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", rows)
