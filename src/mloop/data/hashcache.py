"""The local hash cache, `$MLOOP_HOME/cache/hashes.db`: file identity -> blake3 digest.

A file is known by `(device, inode, size, mtime_ns)`; a hit costs one `stat`, not a read. An entry
whose mtime lies within 2 s of when it was recorded is not trusted (the file may have been
written again within the filesystem's timestamp granularity, as git's "racy" index entries), so
such a file is hashed again and re-recorded. This is a machine-local cache, not metadata: it is a
plain SQLite file read with the standard library, and losing it only costs re-hashing.

A second table remembers, per folder, a signature of every file's path and identity with the
manifest digest it gave (`ingest.tree_signature`): checking an unchanged folder then costs its stats
and one row, not one row per file. The same 2 s rule applies to the newest file in the folder.
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
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trees (
    path TEXT PRIMARY KEY,
    signature TEXT NOT NULL,
    digest TEXT NOT NULL,
    recorded_ns INTEGER NOT NULL
) WITHOUT ROWID;
"""
_DENSE = 4  # one range query when the inodes span at most this many times their count


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
        self._conn.executescript(_SCHEMA)

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
        keys = [(st.st_dev, st.st_ino) for st in stats]
        found = {(dev, ino): rest for dev, ino, *rest in self._rows(keys)}
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

    def _rows(self, keys: list[tuple[int, int]]) -> list[tuple]:
        """Rows for these (device, inode) keys, maybe with others: one range scan per device when
        the inodes are dense (a folder written at once), else batches of IN lists."""
        rows: list[tuple] = []
        cols = "SELECT dev, ino, size, mtime_ns, digest, recorded_ns FROM hashes"
        for dev in sorted({k[0] for k in keys}):
            inos = sorted({k[1] for k in keys if k[0] == dev})
            if inos[-1] - inos[0] < _DENSE * len(inos):
                rows += self._conn.execute(f"{cols} WHERE dev = ? AND ino BETWEEN ? AND ?",
                                           (dev, inos[0], inos[-1])).fetchall()
                continue
            for i in range(0, len(inos), _BATCH):
                chunk = inos[i: i + _BATCH]
                rows += self._conn.execute(f"{cols} WHERE dev = ? AND ino IN ({','.join('?' * len(chunk))})",
                                           (dev, *chunk)).fetchall()
        return rows

    def record(self, items: Iterable[tuple[os.stat_result, str]]) -> None:
        """Remember `(stat, digest)` pairs (the stat taken before the content was read)."""
        now = time.time_ns()
        rows = [(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, digest, now) for st, digest in items]
        if not rows:
            return
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", rows)

    def tree_digest(self, path: str, signature: str, newest_mtime_ns: int) -> str | None:
        """The manifest digest recorded for folder `path` with this signature, if trusted (its newest
        file's mtime at least 2 s older than the record)."""
        row = self._conn.execute("SELECT signature, digest, recorded_ns FROM trees WHERE path = ?",
                                 (path,)).fetchone()
        if row is None or row[0] != signature or row[2] - newest_mtime_ns < RACY_NS:
            return None
        return row[1]

    def record_tree(self, path: str, signature: str, digest: str) -> None:
        """Remember the manifest digest of folder `path` (the signature taken before its files were read)."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT OR REPLACE INTO trees VALUES (?, ?, ?, ?)",
                               (path, signature, digest, time.time_ns()))
