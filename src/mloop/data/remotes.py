"""Remotes: another blob store (a folder, `s3://…`, any fsspec URL) to push data to and pull it from.

Only missing blobs move, several at a time; every blob is verified against its digest when it
arrives (a corrupt one raises CorruptBlob, named, and is not stored).

    >>> mloop.data.remote_add("origin", "s3://team-bucket/mloop", default=True)  # doctest: +SKIP
    >>> mloop.data.push(); mloop.data.pull()                                     # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.artifacts.blobs import BlobStore, get_blob_store
from mloop.data import ingest
from mloop.data.versions import check_name
from mloop.errors import CorruptBlob, InvalidInput, NotFound
from mloop.store.data import DataRemoteRepo
from mloop.store.db import get_store

if TYPE_CHECKING:
    from mloop.data.pointers import Pointer

Progress = Callable[[int, int], None]  # (done, total)
WORKERS = 8


# -- configuration --------------------------------------------------------------------------

def remote_add(name: str, url: str, default: bool = False) -> dict:
    """Name a remote; the first one (or one added with `default=True`) is the default."""
    check_name(name)
    if not url:
        raise InvalidInput("a remote needs a URL (a folder, s3://bucket/prefix, or any fsspec URL)")
    if "://" not in url:
        url = str(Path(url).expanduser().absolute())
    DataRemoteRepo(get_store()).add(name, url, default)
    return next(r for r in remote_list() if r["name"] == name)


def remote_remove(name: str) -> None:
    DataRemoteRepo(get_store()).remove(name)


def remote_list() -> list[dict]:
    return DataRemoteRepo(get_store()).list()


def remote_store(name: str | None = None) -> BlobStore:
    """The blob store of a named remote (default: the default remote)."""
    remotes = remote_list()
    if not remotes:
        raise NotFound("no data remote is configured; add one with 'mloop data remote add NAME URL --default'")
    if name is None:
        chosen = next((r for r in remotes if r["is_default"]), None)
        if chosen is None:
            raise InvalidInput(f"no default remote; name one with --remote (remotes: "
                               f"{', '.join(r['name'] for r in remotes)})")
    else:
        chosen = next((r for r in remotes if r["name"] == name), None)
        if chosen is None:
            raise NotFound(f"no remote {name!r} (remotes: {', '.join(r['name'] for r in remotes)})")
    return BlobStore(chosen["url"])


# -- moving one blob ------------------------------------------------------------------------

def _hash_file(path: str) -> str:
    return ingest.hash_large(path) if os.path.getsize(path) >= ingest.LARGE else ingest.hash_bytes(
        ingest.read_bytes(path))


def transfer(src: BlobStore, dst: BlobStore, digest: str) -> None:
    """Copy one blob from `src` to `dst`, verified against its digest before it becomes visible."""
    if src.is_local and src.local_path(digest) is None:  # packed (or missing) in the local store
        with src.open(digest) as fh:  # NotFound when missing; a packed blob is read verified
            dst.put_bytes(fh.read())
        return
    if dst.is_local:
        key = dst.key(digest)
        os.makedirs(os.path.dirname(key), exist_ok=True)
        tmp = f"{key}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            if src.is_local:
                shutil.copyfile(src.key(digest), tmp)
            else:
                src.fs.get_file(src.key(digest), tmp)
            if _hash_file(tmp) != digest:
                raise CorruptBlob(f"blob {digest} from {src.uri} does not match its digest; it was not stored")
            os.replace(tmp, key)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not in {src.uri}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return
    if src.is_local:
        path = src.key(digest)
        if _hash_file(path) != digest:
            raise CorruptBlob(f"blob {digest} in {src.uri} does not match its digest; it was not pushed")
        dst.fs.put_file(path, dst.key(digest))
        return
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = os.path.join(tmpdir, "blob")
        src.fs.get_file(src.key(digest), tmp)
        if _hash_file(tmp) != digest:
            raise CorruptBlob(f"blob {digest} from {src.uri} does not match its digest; it was not copied")
        dst.fs.put_file(tmp, dst.key(digest))


def transfer_many(src: BlobStore, dst: BlobStore, digests: Iterable[str],
                  progress: Progress | None = None, *, pack: bool = False) -> list[str]:
    """Copy the blobs `dst` lacks, in parallel; returns the digests copied. With `pack` (a pull into
    the local store), many small blobs arrive in one pack; remotes always get one object per blob."""
    wanted = list(dict.fromkeys(digests))
    if not wanted:
        return []
    have = set(dst.iter_blobs()) if len(wanted) > 32 else {d for d in wanted if dst.exists(d)}
    missing = [d for d in wanted if d not in have]
    done = 0
    if progress:
        progress(0, len(missing))
    from mloop.artifacts.packs import MIN_BLOBS

    if pack and dst.is_local and len(missing) >= MIN_BLOBS:
        return _pull_packed(src, dst, missing, progress)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for _ in pool.map(lambda d: transfer(src, dst, d), missing):
            done += 1
            if progress:
                progress(done, len(missing))
    return missing


def _pull_packed(src: BlobStore, dst: BlobStore, missing: list[str], progress: Progress | None) -> list[str]:
    """Fetch many blobs into a local store: the small ones into one pack (as `add` stores them),
    the large ones loose; all verified, and the pack visible only once every blob arrived."""
    from mloop.artifacts.packs import MAX_BLOB, PackWriter
    from mloop.data.ingest import syncfs

    def fetch(digest: str) -> bytes | None:
        """The blob's bytes when it is small (verified), else None once it is stored loose."""
        with src.open(digest) as fh:  # NotFound, named, when the remote lacks it
            data = fh.read(MAX_BLOB)
            more = fh.read(1)
        if more:
            transfer(src, dst, digest)
            return None
        if ingest.hash_bytes(data) != digest:
            raise CorruptBlob(f"blob {digest} from {src.uri} does not match its digest; it was not stored")
        return data

    writer = PackWriter(dst.root, f"pull-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for done, (digest, data) in enumerate(zip(missing, pool.map(fetch, missing), strict=True), start=1):
                if data is not None:
                    writer.add(digest, data)
                if progress:
                    progress(done, len(missing))
        if writer.stage():
            syncfs(writer.dir)
            writer.publish()
            syncfs(writer.dir)
    except BaseException:
        writer.abort()
        raise
    return missing


# -- what to move ---------------------------------------------------------------------------

def _version_blobs(dv) -> list[str]:  # noqa: ANN001
    out = [dv.digest, *(e.digest for e in dv.files)]
    record = dv._record.get("profile") or {}
    sample = (record.get("sample") or {}).get("digest")
    if sample:
        out.append(sample)
    return out


def _selection(targets: list[str] | None, *, default: str) -> tuple[list, list[Pointer]]:
    """(versions, pointers) named by targets; default 'store' (every version) or 'pointers'."""
    from mloop.data import pointers as ptr
    from mloop.data.checkout import _is_uri
    from mloop.data.versions import resolve
    from mloop.store.data import DatasetVersionRepo

    versions, pointers = [], []
    if targets:
        for t in targets:
            if _is_uri(t):
                versions.append(resolve(t))
            else:
                pointers += ptr.targets(t)
        return versions, pointers
    pointers = ptr.targets(None)
    if default == "store" or not pointers:
        from mloop.data.versions import DatasetVersion

        versions = [DatasetVersion(r, created=False)
                    for r in DatasetVersionRepo(get_store()).all()]
    return versions, pointers


def push(targets: list[str] | None = None, remote: str | None = None,
         progress: Progress | None = None) -> dict:
    """Send the blobs of the named versions/pointers (default: every version) the remote lacks."""
    local, dst = get_blob_store(), remote_store(remote)
    versions, pointers = _selection(targets, default="store")
    digests: list[str] = []
    for dv in versions:
        digests += _version_blobs(dv)
    for p in pointers:
        digests += [p.digest, *(e.digest for e in local.read_manifest(p.digest))]
    sent = transfer_many(local, dst, digests, progress)
    return {"remote": dst.uri, "blobs": len(set(digests)), "pushed": len(sent),
            "bytes": sum(_size(local, d) for d in sent)}


def pull(targets: list[str] | None = None, remote: str | None = None, progress: Progress | None = None,
         checkout: bool = True) -> dict:
    """Fetch the blobs of the named pointers/versions (default: the project's pointers) the local
    store lacks, then check the pointers' data out."""
    local, src = get_blob_store(), remote_store(remote)
    versions, pointers = _selection(targets, default="pointers")
    manifests = [dv.digest for dv in versions] + [p.digest for p in pointers]
    fetched = transfer_many(src, local, manifests)
    digests: list[str] = []
    for dv in versions:
        digests += _version_blobs(dv)
    for p in pointers:
        digests += [e.digest for e in local.read_manifest(p.digest)]
    fetched += transfer_many(src, local, digests, progress, pack=True)
    results = []
    if checkout:
        from mloop.data.checkout import checkout_pointer

        results = [checkout_pointer(p) for p in pointers]
    return {"remote": src.uri, "blobs": len(set(digests) | set(manifests)), "pulled": len(fetched),
            "checked_out": results}


def _size(store: BlobStore, digest: str) -> int:
    try:
        if store.is_local:
            packed = store.packed_size(digest)
            return os.path.getsize(store.key(digest)) if packed is None else packed
        return int(store.fs.size(store.key(digest)))
    except (OSError, FileNotFoundError):
        return 0
