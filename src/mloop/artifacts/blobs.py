"""The content-addressed blob store over fsspec: `blobs/<2 hex>/<62 hex>` under a root URL.

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


def _filesystem(uri: str):  # noqa: ANN202
    import fsspec

    if uri.startswith("s3://"):
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:
            raise missing("s3fs", "s3", "an s3:// artifact store") from exc
    fs, root = fsspec.core.url_to_fs(uri, **_storage_options(uri))
    return fs, root.rstrip("/")


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
        self.fs, self.root = _filesystem(uri)
        from fsspec.implementations.local import LocalFileSystem

        self.is_local = isinstance(self.fs, LocalFileSystem)
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)

    # -- keys -------------------------------------------------------------------------------
    def key(self, digest: str) -> str:
        """Where a blob lives under the root."""
        hexpart = hex_of(digest)
        return f"{self.root}/blobs/{hexpart[:2]}/{hexpart[2:]}"

    def local_path(self, digest: str) -> Path | None:
        """The blob's file on this machine when the store is local (for reflinks and mmap)."""
        return Path(self.key(digest)) if self.is_local else None

    def exists(self, digest: str) -> bool:
        """True if the blob is stored."""
        key = self.key(digest)
        return os.path.exists(key) if self.is_local else self.fs.exists(key)

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
            self._write(self.key(digest), io.BytesIO(data))
        return digest

    def put_file(self, path: str | os.PathLike, digest: str | None = None) -> str:
        """Store one file (hashed first, so an already stored file is never copied)."""
        digest = digest or digest_of_file(path)
        if self.exists(digest):
            return digest
        key = self.key(digest)
        if self.is_local:
            self._write_local_file(Path(path), key, digest)
        else:
            self.fs.makedirs(os.path.dirname(key), exist_ok=True)
            self.fs.put_file(os.fspath(path), key)
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

    def _write_local_file(self, src: Path, key: str, digest: str) -> None:
        os.makedirs(os.path.dirname(key), exist_ok=True)
        tmp = f"{key}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                first = fin.read(_CHUNK)
                fout.write(first)
                crash_point("blob.write")
                shutil.copyfileobj(fin, fout, _CHUNK)
                fout.flush()
                os.fsync(fout.fileno())
            os.replace(tmp, key)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _write(self, key: str, stream: BinaryIO) -> None:
        if self.is_local:
            os.makedirs(os.path.dirname(key), exist_ok=True)
            tmp = f"{key}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                with open(tmp, "wb") as fout:
                    fout.write(stream.read(_CHUNK))
                    crash_point("blob.write")
                    shutil.copyfileobj(stream, fout, _CHUNK)
                    fout.flush()
                    os.fsync(fout.fileno())
                os.replace(tmp, key)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            self.fs.pipe_file(key, stream.read())

    # -- reading ----------------------------------------------------------------------------
    def open(self, digest: str) -> BinaryIO:
        """A binary stream of the blob (not verified: use `get` or `copy_to` for that)."""
        key = self.key(digest)
        try:
            return open(key, "rb") if self.is_local else self.fs.open(key, "rb")
        except FileNotFoundError as exc:
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
            return digest_of_file(self.key(digest)) == digest
        hasher = new_hasher()
        with self.open(digest) as fh:
            while chunk := fh.read(_CHUNK):
                hasher.update(chunk)
        return "blake3:" + hasher.hexdigest() == digest

    def copy_to(self, digest: str, dest: str | os.PathLike, *, is_dir: bool = False) -> Path:
        """Write a file blob to `dest`, or a directory blob into folder `dest`; verified, atomic per file."""
        dest = Path(dest)
        if not is_dir:
            self._copy_file(digest, dest)
            return dest
        for entry in self.read_manifest(digest):
            target = dest / manifest.check_relative(entry.path)
            if dest.resolve() not in target.resolve().parents:
                raise InvalidInput(f"manifest {digest} path {entry.path!r} escapes {dest}")
            self._copy_file(entry.digest, target)
        dest.mkdir(parents=True, exist_ok=True)
        return dest

    def _copy_file(self, digest: str, dest: Path) -> None:
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
        return f"{self.root}/{manifest.check_relative(key)}"

    def put_named(self, key: str, src: bytes | str | os.PathLike) -> str:
        """Write a named object once (atomic); return its digest. An existing key is a Conflict."""
        full = self.named_key(key)
        if (os.path.exists(full) if self.is_local else self.fs.exists(full)):
            raise Conflict(f"named object {key!r} already exists in {self.uri}; named objects are write-once")
        if isinstance(src, bytes | bytearray | memoryview):
            data = bytes(src)
            digest = digest_of_bytes(data)
            self._write(full, io.BytesIO(data))
            return digest
        digest = digest_of_file(src)
        if self.is_local:
            self._write_local_file(Path(src), full, digest)
        else:
            self.fs.put_file(os.fspath(src), full)
        return digest

    def open_named(self, key: str) -> BinaryIO:
        full = self.named_key(key)
        try:
            return open(full, "rb") if self.is_local else self.fs.open(full, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no named object {key!r} in {self.uri}") from exc

    def list_named(self, prefix: str) -> list[str]:
        """Keys of named objects under a prefix, sorted (temp files of writes in flight left out)."""
        base = f"{self.root}/{prefix.strip('/')}"
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        offset = len(self.root) + 1
        return sorted(p[offset:] for p in found if ".tmp-" not in p.rsplit("/", 1)[-1])

    def iter_blobs(self) -> Iterator[str]:
        """Every stored blob's digest (for garbage collection and push)."""
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
        """Remove a blob (garbage collection only)."""
        key = self.key(digest)
        if self.is_local:
            if os.path.exists(key):
                os.unlink(key)
        elif self.fs.exists(key):
            self.fs.rm(key)


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
