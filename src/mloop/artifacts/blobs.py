"""The content-addressed blob store over fsspec: `blobs/<2 hex>/<62 hex>` under a root URL.

A local store may also hold blobs in packs (`packs/`, artifacts/packs.py: many small blobs in one
file); every read here finds a blob wherever it is.

Writes are atomic: locally a temp file in the blob's folder, then `os.replace`; on object stores a
PUT to the final key (an object appears whole or not at all). Identical content is stored once.
Reads stream and are verified against the digest before anything is handed out.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mloop._faults import crash_point
from mloop.artifacts import manifest
from mloop.artifacts.hashing import digest_of_bytes, digest_of_file, hex_of, new_hasher
from mloop.errors import Conflict, CorruptBlob, InvalidInput, NotFound, missing

_CHUNK = 1 << 20
_PART = 8 << 20  # object-store upload part size: what one write holds in memory


def _filesystem(uri: str):  # noqa: ANN202
    import fsspec

    if uri.startswith("s3://"):
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:
            raise missing("s3fs", "s3", "an s3:// artifact store") from exc
    fs, root = fsspec.core.url_to_fs(uri, **_storage_options(uri))
    return fs, root.rstrip("/")


def _plain_local_root(uri: str) -> str | None:
    """The root of a store at an absolute, normalised local path (what fsspec would make of it),
    else None (fsspec decides)."""
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if "://" in path or "::" in path or not os.path.isabs(path):
        return None
    path = path.rstrip("/")
    return path if path and os.path.normpath(path) == path else None


def _storage_options(uri: str) -> dict:
    if uri.startswith("s3://"):
        opts: dict = {"use_listings_cache": False}
        endpoint = os.environ.get("MLOOP_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        return opts
    return {}


class BlobStore:
    """Blobs under one root URL (a local folder, `s3://bucket/prefix`, any fsspec URL)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.root = _plain_local_root(uri)
        self._fs = None  # a plain local folder needs only os calls: fsspec is imported on first use of .fs
        if self.root is None:
            self._fs, self.root = _filesystem(uri)
            from fsspec.implementations.local import LocalFileSystem

            self.is_local = isinstance(self._fs, LocalFileSystem)
        else:
            self.is_local = True
        self._exclusive_writes = type(self._fs).__module__.startswith("s3fs")
        self.packs = None
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)
            from mloop.artifacts.packs import index_for

            self.packs = index_for(self.root)

    @property
    def fs(self):  # noqa: ANN201
        """The fsspec filesystem of the store."""
        if self._fs is None:
            self._fs, _ = _filesystem(self.uri)
        return self._fs

    # -- keys -------------------------------------------------------------------------------
    def key(self, digest: str) -> str:
        """Where a blob lives under the root."""
        hexpart = hex_of(digest)
        return f"{self.root}/blobs/{hexpart[:2]}/{hexpart[2:]}"

    def local_path(self, digest: str) -> Path | None:
        """The blob's own file on this machine (for reflinks and mmap): None on a remote store or
        when the blob is packed."""
        if not self.is_local or not os.path.exists(self.key(digest)):
            return None
        return Path(self.key(digest))

    def exists(self, digest: str) -> bool:
        """True if the blob is stored (loose, or in a pack)."""
        key = self.key(digest)
        if not self.is_local:
            return self.fs.exists(key)
        return os.path.exists(key) or self.packs.find(digest) is not None

    def packed_size(self, digest: str) -> int | None:
        """The size of a packed blob (None when it is not in a pack)."""
        where = self.packs.find(digest) if self.packs is not None else None
        return None if where is None else where.size

    # -- writing ----------------------------------------------------------------------------
    def put(self, src: bytes | str | os.PathLike) -> str:
        """Store bytes, a file or a directory (as a manifest blob); return the digest."""
        if isinstance(src, bytes | bytearray | memoryview):
            return self.put_bytes(bytes(src))
        path = Path(src)
        if path.is_symlink():
            raise InvalidInput(f"{path} is a symlink; blobs hold regular files and folders only")
        if path.is_dir():
            return self.put_dir(path)
        if path.is_file():
            return self.put_file(path)
        raise NotFound(f"no such file or folder: {path}")

    def put_bytes(self, data: bytes) -> str:
        """Store a byte string; return its digest."""
        digest = digest_of_bytes(data)
        if not self.exists(digest):
            self._write(self.key(digest), _chunks_of_bytes(data), expect=digest, what="bytes")
        return digest

    def put_file(self, path: str | os.PathLike, digest: str | None = None) -> str:
        """Store one file (hashed first, so an already stored file is never copied).

        The copy is hashed again on the way in: a file that changed meanwhile (or a wrong
        `digest` from a hash cache) is refused rather than stored under a digest it does not have.
        """
        if Path(path).is_symlink():
            raise InvalidInput(f"{path} is a symlink; blobs hold regular files and folders only")
        digest = digest or digest_of_file(path)
        if self.exists(digest):
            return digest
        self._write(self.key(digest), _chunks_of_file(path), expect=digest, what=os.fspath(path))
        return digest

    def put_dir(self, folder: str | os.PathLike, digests: dict[str, str] | None = None) -> str:
        """Store every file under `folder` and a manifest of them; return the manifest's digest.

        `digests` may give known digests by relative path (a hash cache), skipping re-hashing.
        """
        entries = [
            manifest.Entry(rel, self.put_file(full, (digests or {}).get(rel)), full.stat().st_size)
            for rel, full in walk_files(Path(folder))
        ]
        return self.put_bytes(manifest.encode(entries))

    def put_manifest(self, entries: list[manifest.Entry]) -> str:
        """Store a manifest for blobs already stored; return its digest."""
        return self.put_bytes(manifest.encode(entries))

    def _write(self, key: str, chunks: Iterator[bytes], *, expect: str | None, what: str,
               exclusive: bool = False) -> str:
        """Write `chunks` so that `key` shows all of them or nothing; return their digest.

        Local: a temp file beside the key, fsynced, then `os.replace` (or `os.link` when
        `exclusive`, which fails if the key exists). Object stores: a streamed upload to the final
        key, committed only by `close()` (a killed process leaves an unfinished multipart upload,
        never an object); on any error the upload is discarded. With `expect`, the bytes must hash
        to it or nothing is committed.
        """
        hasher = new_hasher()
        if self.is_local:
            os.makedirs(os.path.dirname(key), exist_ok=True)
            tmp = f"{key}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as fout:
                    for chunk in chunks:
                        hasher.update(chunk)
                        fout.write(chunk)
                    fout.flush()
                    os.fsync(fout.fileno())
                crash_point("blob.write")
                digest = self._checked(hasher, expect, what)
                if exclusive:
                    try:
                        os.link(tmp, key)
                    except FileExistsError as exc:
                        raise _exists(what, self.uri) from exc
                else:
                    os.replace(tmp, key)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return digest
        if exclusive and self.fs.exists(key):
            raise _exists(what, self.uri)
        # "xb" makes the final PUT conditional (If-None-Match: *) where the filesystem supports it
        fout = self.fs.open(key, "xb" if exclusive and self._exclusive_writes else "wb", block_size=_PART)
        try:
            for chunk in chunks:
                hasher.update(chunk)
                fout.write(chunk)
            crash_point("blob.write")
            digest = self._checked(hasher, expect, what)
        except BaseException:
            _discard(fout)
            raise
        try:
            fout.close()
        except FileExistsError as exc:
            raise _exists(what, self.uri) from exc
        except OSError as exc:
            if "PreconditionFailed" in str(exc) or "412" in str(exc):
                raise _exists(what, self.uri) from exc
            raise
        return digest

    def _checked(self, hasher, expect: str | None, what: str) -> str:  # noqa: ANN001
        digest = "blake3:" + hasher.hexdigest()
        if expect is not None and digest != expect:
            raise InvalidInput(f"{what} changed while it was being stored (expected {expect}, read {digest}); "
                               "nothing was stored")
        return digest

    # -- reading ----------------------------------------------------------------------------
    def open(self, digest: str) -> BinaryIO:
        """A binary stream of the blob (not verified: use `get` or `copy_to` for that)."""
        key = self.key(digest)
        try:
            return open(key, "rb") if self.is_local else self.fs.open(key, "rb")
        except FileNotFoundError as exc:
            data = self.packs.read(digest) if self.packs is not None else None  # verified
            if data is not None:
                return io.BytesIO(data)
            raise NotFound(f"blob {digest} is not in the artifact store {self.uri}") from exc

    def get(self, digest: str) -> bytes:
        """The blob's bytes, verified against its digest (for small blobs: manifests, YAML, JSON)."""
        with self.open(digest) as fh:
            data = fh.read()
        if digest_of_bytes(data) != digest:
            raise CorruptBlob(f"blob {digest} in {self.uri} does not match its digest; it was not used")
        return data

    def read_manifest(self, digest: str) -> list[manifest.Entry]:
        """The entries of a directory blob."""
        return manifest.decode(self.get(digest), digest)

    def verify(self, digest: str) -> bool:
        """True if the stored content still hashes to its digest."""
        if self.is_local:
            if os.path.exists(self.key(digest)) or self.packs.find(digest) is None:
                return digest_of_file(self.key(digest)) == digest
            try:
                return self.packs.read(digest) is not None
            except CorruptBlob:
                return False
        hasher = new_hasher()
        with self.open(digest) as fh:
            while chunk := fh.read(_CHUNK):
                hasher.update(chunk)
        return "blake3:" + hasher.hexdigest() == digest

    def copy_to(self, digest: str, dest: str | os.PathLike, *, is_dir: bool = False) -> Path:
        """Write a file blob to `dest`, or a directory blob into folder `dest`; verified and atomic.

        A directory is assembled in a temp folder beside `dest` and moved in only when every file
        verified, so a corrupt blob leaves `dest` untouched. Manifest paths are checked again here,
        and nothing is written through a symlink that leads out of `dest`.
        """
        dest = Path(dest)
        if not is_dir:
            self._copy_file(digest, dest)
            return dest
        return self.copy_tree(self.read_manifest(digest), dest, what=f"directory blob {digest}")

    def copy_tree(self, entries: list[manifest.Entry], dest: str | os.PathLike, *, what: str = "a tree") -> Path:
        """Write the files `entries` name (relative paths) into folder `dest`; verified, all or nothing."""
        dest = Path(dest)
        for entry in entries:
            manifest.check_relative(entry.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")
        staging.mkdir()  # not mkdtemp: the folder keeps the umask's mode when it becomes dest
        try:
            for entry in entries:
                self._copy_file(entry.digest, staging / entry.path)
            if not dest.exists() and not dest.is_symlink():
                os.replace(staging, dest)
                return dest
            if dest.is_symlink() or not dest.is_dir():
                raise InvalidInput(f"cannot copy {what} into {dest}: it is not a folder")
            root = dest.resolve()
            for entry in entries:
                parent = (dest / entry.path).parent.resolve()
                if parent != root and root not in parent.parents:
                    raise InvalidInput(f"path {entry.path!r} of {what} leads out of {dest} through a symlink; "
                                       "nothing was written")
            for entry in entries:
                target = dest / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / entry.path, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return dest

    def _copy_file(self, digest: str, dest: Path) -> None:
        if dest.is_dir() and not dest.is_symlink():
            raise InvalidInput(f"cannot copy blob {digest} to {dest}: a folder is there")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")
        hasher = new_hasher()
        try:
            with self.open(digest) as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    hasher.update(chunk)
                    fout.write(chunk)
            if "blake3:" + hasher.hexdigest() != digest:
                raise CorruptBlob(f"blob {digest} in {self.uri} does not match its digest; {dest} was not written")
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                tmp.unlink()

    # -- write-once named objects (prediction logs) -----------------------------------------
    def named_key(self, key: str) -> str:
        """Where a named object lives (keys are relative paths outside `blobs/`)."""
        manifest.check_relative(key)
        if key == "blobs" or key.startswith("blobs/") or ".tmp-" in key:
            raise InvalidInput(f"named object key {key!r} is reserved (blobs/ and .tmp- belong to the blob store)")
        return f"{self.root}/{key}"

    def put_named(self, key: str, src: bytes | str | os.PathLike) -> str:
        """Write a named object once (atomic); return its digest. An existing key is a Conflict."""
        full = self.named_key(key)
        if isinstance(src, bytes | bytearray | memoryview):
            return self._write(full, _chunks_of_bytes(bytes(src)), expect=None, what=key, exclusive=True)
        return self._write(full, _chunks_of_file(src), expect=None, what=key, exclusive=True)

    def open_named(self, key: str) -> BinaryIO:
        full = self.named_key(key)
        try:
            return open(full, "rb") if self.is_local else self.fs.open(full, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no named object {key!r} in {self.uri}") from exc

    def list_named(self, prefix: str = "") -> list[str]:
        """Keys of named objects under a folder prefix, sorted (blobs and writes in flight left out)."""
        clean = prefix.strip("/")
        base = f"{self.root}/{clean}" if clean else self.root
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        offset = len(self.root) + 1
        keys = (p[offset:] for p in found if len(p) > offset)
        return sorted(k for k in keys
                      if ".tmp-" not in k.rsplit("/", 1)[-1] and not k.startswith("blobs/"))

    def iter_blobs(self, *, packed: bool = True) -> Iterator[str]:
        """Every stored blob's digest (for garbage collection and push); `packed=False`: loose ones only."""
        if packed and self.packs is not None:
            yield from self.packs.digests()
        base = f"{self.root}/blobs"
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return
        for path in found:
            parts = path.rsplit("/", 2)
            if len(parts) == 3 and ".tmp-" not in parts[2] and len(parts[1]) == 2 and len(parts[2]) == 62:
                yield "blake3:" + parts[1] + parts[2]

    def delete(self, digest: str) -> None:
        """Remove a loose blob (garbage collection only; gc rewrites packs itself)."""
        key = self.key(digest)
        if self.is_local:
            if os.path.exists(key):
                os.unlink(key)
        elif self.fs.exists(key):
            self.fs.rm(key)


def _chunks_of_bytes(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), _CHUNK):
        yield bytes(view[start : start + _CHUNK])


def _chunks_of_file(path: str | os.PathLike) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _discard(fout) -> None:  # noqa: ANN001
    """Abandon an object-store upload so nothing appears at its key (fsspec would commit on close)."""
    try:
        fout.discard()
    finally:
        fout.buffer = io.BytesIO()
        fout.closed = True


def _exists(key: str, uri: str) -> Conflict:
    return Conflict(f"named object {key!r} already exists in {uri}; named objects are write-once")


def walk_files(folder: Path) -> list[tuple[str, Path]]:
    """`(relative POSIX path, full path)` of every regular file under `folder`; symlinks refused."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                raise InvalidInput(f"{os.path.join(dirpath, name)} is a symlink; blobs hold no symlinks")
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                raise InvalidInput(f"{full} is a symlink; blobs hold no symlinks")
            if not full.is_file():
                raise InvalidInput(f"{full} is not a regular file (a pipe, socket or device); blobs hold files only")
            out.append((full.relative_to(folder).as_posix(), full))
    out.sort()
    return out


_stores: dict[str, BlobStore] = {}


def get_blob_store(uri: str | None = None) -> BlobStore:
    """The process-wide blob store for `uri` (default: the configured artifact URI)."""
    if uri is None:
        from mloop.config import get_settings

        uri = get_settings().artifact_uri
    store = _stores.get(uri)
    if store is None:
        store = _stores[uri] = BlobStore(uri)
    return store


def _forget() -> None:
    _stores.clear()


def _register() -> None:
    from mloop.config import on_reset

    on_reset(_forget)


_register()
