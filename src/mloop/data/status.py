"""`mloop data status`: the working tree against its pointers, at one `stat` per unchanged file.

Needs no database: a pointer names the manifest digest, and the tree's own manifest (digests from
the hash cache) either matches it or does not; only a changed tree reads the stored manifest to
say which files were added, removed or modified.
"""

from __future__ import annotations

import os

from mloop.artifacts import manifest as manifest_mod
from mloop.artifacts.hashing import digest_of_bytes
from mloop.data import ingest
from mloop.data.hashcache import HashCache
from mloop.data.pointers import Pointer, targets
from mloop.errors import MloopError


def status(target: str | os.PathLike | None = None) -> list[dict]:
    """One record per pointer: `path, uri, state` ("unchanged" | "modified" | "missing") and, when
    modified, the `added`, `removed` and `modified` relative paths."""
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
    digests = ingest.digests_of(files, cache)
    if not is_dir:
        if p.content is not None:
            if digests[0] != p.content:
                out["state"] = "modified"
                out["modified"] = [files[0].rel]
            return out
        entries = ingest.manifest_entries(files, digests)
        stored = _stored(p)
        if stored is None or stored[0].digest != digests[0]:
            out["state"] = "modified"
            out["modified"] = [files[0].rel]
        return out
    entries = ingest.manifest_entries(files, digests)
    if digest_of_bytes(ingest.encode_scanned(entries)) == p.digest:
        return out
    out["state"] = "modified"
    stored = _stored(p)
    if stored is not None:
        old = {e.path: e.digest for e in stored}
        new = {e.path: e.digest for e in entries}
        out["added"] = sorted(set(new) - set(old))
        out["removed"] = sorted(set(old) - set(new))
        out["modified"] = sorted(k for k in set(old) & set(new) if old[k] != new[k])
    return out


def _stored(p: Pointer) -> list[manifest_mod.Entry] | None:
    from mloop.data.checkout import read_manifest

    try:
        return read_manifest(p.digest)
    except MloopError:
        return None

