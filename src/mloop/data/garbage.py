"""`gc`: delete blobs nothing references and that are older than a day (dry run by default).

The live set is every digest in `blob_refs` (written by every room, in the same transaction as
the row that points at a blob) plus everything reachable through a live manifest, transitively.
The age rule protects blobs whose row is still being written (blobs are stored before the row
commits) and temp files of writes in flight.
"""

from __future__ import annotations

import os
import time

from mloop.artifacts import manifest as manifest_mod
from mloop.artifacts.blobs import BlobStore, get_blob_store
from mloop.errors import MloopError
from mloop.store.db import get_store
from mloop.store.lineage import BlobRefRepo

MIN_AGE_S = 24 * 3600
_MANIFEST_START = b'{"path":'


def live_set(store: BlobStore) -> set[str]:
    """Referenced digests and everything their manifests reach."""
    live = set(BlobRefRepo(get_store()).live_digests())
    frontier = list(live)
    while frontier:
        digest = frontier.pop()
        for entry in _entries(store, digest):
            if entry.digest not in live:
                live.add(entry.digest)
                frontier.append(entry.digest)
    return live


def _entries(store: BlobStore, digest: str) -> list[manifest_mod.Entry]:
    try:
        with store.open(digest) as fh:
            if fh.read(len(_MANIFEST_START)) != _MANIFEST_START:
                return []
        return store.read_manifest(digest)
    except (MloopError, OSError, UnicodeDecodeError, ValueError):
        return []


def _age_s(store: BlobStore, key: str, now: float) -> float:
    if store.is_local:
        return now - os.stat(key).st_mtime
    info = store.fs.info(key)
    ts = info.get("LastModified") or info.get("mtime") or info.get("created")
    if ts is None:
        return 0.0
    return now - (ts.timestamp() if hasattr(ts, "timestamp") else float(ts))


def gc(*, dry_run: bool = True, min_age_s: float = MIN_AGE_S, store: BlobStore | None = None) -> dict:
    """Find (and unless `dry_run`, delete) unreferenced blobs older than `min_age_s`."""
    store = store or get_blob_store()
    live = live_set(store)
    now = time.time()
    stored = unreferenced = young = 0
    doomed: list[tuple[str, int]] = []
    packs = store.packs.packs() if store.packs is not None else {}
    rewrites: list[tuple[str, list]] = []  # (pack, the entries it keeps)
    for pack, entries in packs.items():
        stored += len(entries)
        dead = [e for e in entries if e[0] not in live]
        if not dead:
            continue
        unreferenced += len(dead)
        if now - os.stat(pack).st_mtime < min_age_s:
            young += len(dead)
            continue
        doomed += [(d, size) for d, _, size in dead]
        rewrites.append((pack, [e for e in entries if e[0] in live]))
    for digest in store.iter_blobs(packed=False):
        stored += 1
        if digest in live:
            continue
        unreferenced += 1
        key = store.key(digest)
        if _age_s(store, key, now) < min_age_s:
            young += 1
            continue
        size = os.path.getsize(key) if store.is_local else int(store.fs.size(key))
        doomed.append((digest, size))
    stale_tmp = _stale_temp_files(store, now, min_age_s)
    if not dry_run:
        for pack, keep in rewrites:
            repack(store, pack, keep)
        for digest, _ in doomed:  # a loose copy, if any (packed ones went with their pack's rewrite)
            store.delete(digest)
        for path in stale_tmp:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    return {"store": store.uri, "dry_run": dry_run, "stored": stored, "live": len(live),
            "unreferenced": unreferenced, "young": young, "deleted" if not dry_run else "would_delete":
            [d for d, _ in doomed], "bytes": sum(s for _, s in doomed), "stale_temp_files": len(stale_tmp)}


def repack(store: BlobStore, pack: str, keep: list[tuple[str, int, int]]) -> None:
    """Replace `pack` by a pack of only the entries in `keep` (none: just remove it).

    The new pack is durable and visible before the old index goes, so every kept blob stays
    readable throughout; readers holding the old pack open keep reading it until they close it."""
    from mloop.artifacts.packs import PackWriter
    from mloop.data.ingest import syncfs

    if keep:
        writer = PackWriter(store.root, f"gc-{os.getpid()}-{os.urandom(4).hex()}")
        try:
            for digest, _, _ in keep:
                data = store.packs.read(digest)  # verified: a damaged blob is never carried over
                if data is None:
                    raise MloopError(f"blob {digest} vanished from {pack} during gc; run gc again")
                writer.add(digest, data)
            writer.stage()
            syncfs(store.packs.dir)
            writer.publish()
        except BaseException:
            writer.abort()
            raise
    os.unlink(pack[: -len(".pack")] + ".idx")  # `keep` is a strict subset: the new pack has another name
    os.unlink(pack)
    syncfs(store.packs.dir)
    store.packs.refresh()


def _stale_temp_files(store: BlobStore, now: float, min_age_s: float) -> list[str]:
    if not store.is_local:
        return []
    out = []
    for base in (os.path.join(store.root, "blobs"), os.path.join(store.root, "packs")):
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                if ".tmp-" in name:
                    full = os.path.join(dirpath, name)
                    try:
                        if now - os.stat(full).st_mtime >= min_age_s:
                            out.append(full)
                    except FileNotFoundError:
                        pass
    return out
