"""`mloop data status`: the working tree against its pointers, at one `stat` per unchanged file.

Needs no database and no blob store: a pointer names the manifest digest, and the tree's own
manifest (digests from the hash cache) either matches it or does not. An unchanged folder is
recognised by its signature (every file's path and identity, `ingest.tree_signature`) with one
hash-cache row; only a changed tree reads the stored manifest to say which files were added,
removed or modified.
"""

from __future__ import annotations

import os

from mloop.data import ingest
from mloop.data.hashcache import HashCache
from mloop.data.pointers import Pointer, targets
from mloop.errors import MloopError

CHANGED_STATES = ("modified", "missing")  # any of these makes `mloop data status` exit 1


def status(target: str | os.PathLike | None = None) -> list[dict]:
    """One record per pointer: `path, uri, state` ("unchanged" | "modified" | "missing") and, when
    modified, the `added`, `removed` and `modified` relative paths.

        >>> [r["state"] for r in mloop.data.status("data/images")]  # doctest: +SKIP
        ['unchanged']
    """
    pointers = targets(target)
    with HashCache.open() as cache:
        return [_one(p, cache) for p in pointers]


def _one(p: Pointer, cache: HashCache) -> dict:
    out = {"path": str(p.data_path), "pointer": str(p.file), "uri": p.uri, "state": "unchanged",
           "added": [], "removed": [], "modified": []}
    path = p.data_path
    if not os.path.lexists(path):
        out["state"] = "missing"
        return out
    try:
        is_dir, files = ingest.scan(path)
    except MloopError:
        out["state"] = "modified"
        return out
    if is_dir != (p.kind == "dir"):
        out["state"] = "modified"
        return out
    if not is_dir:
        digest = ingest.digests_of(files, cache)[0]
        if p.content is not None:
            if digest != p.content:
                out["state"] = "modified"
                out["modified"] = [files[0].rel]
            return out
        stored = _stored(p)
        if stored is None or stored[0].digest != digest:
            out["state"] = "modified"
            out["modified"] = [files[0].rel]
        return out
    signature, newest = ingest.tree_signature(files)
    if cache.tree_digest(str(path), signature, newest) == p.digest:
        return out
    digests = ingest.digests_of(files, cache)
    manifest = ingest.hash_bytes(ingest.encode_manifest(files, digests))
    cache.record_tree(str(path), signature, manifest)
    if manifest == p.digest:
        return out
    out["state"] = "modified"
    stored = _stored(p)
    if stored is not None:
        old = {e.path: e.digest for e in stored}
        new = {f.rel: d for f, d in zip(files, digests, strict=True)}
        out["added"] = sorted(set(new) - set(old))
        out["removed"] = sorted(set(old) - set(new))
        out["modified"] = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    return out


def _stored(p: Pointer) -> list | None:
    from mloop.data.checkout import read_manifest

    try:
        return read_manifest(p.digest)
    except MloopError:
        return None
