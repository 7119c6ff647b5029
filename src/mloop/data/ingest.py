"""Scanning, hashing and storing a file or folder: one `stat` per file when the hash cache knows it.

Content is read at most once: a small file is read into memory, hashed and written to its blob
from the same bytes; a large one is copied into a temp file beside its blob (in-kernel copy), the
copy hashed with blake3's threads over mmap, then renamed to its digest. What is stored is always
what was hashed, even when the source changes meanwhile. Temp files are flushed with one
`syncfs` per batch before they are renamed, instead of one fsync per file. When an add stores many
small blobs they go into one pack (artifacts/packs.py) instead of a file each.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from mloop._faults import crash_point
from mloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from mloop.artifacts.manifest import Entry
    from mloop.data.hashcache import HashCache

# `mloop.artifacts.hashing.PREFIX` (tests pin the two equal); this module does not import
# mloop.artifacts, so `mloop data status` stays free of the blob store's libraries.
PREFIX = "blake3:"
LARGE = 4 << 20  # from here on: in-kernel copy + threaded mmap hashing


@dataclass(slots=True)
class ScannedFile:
    rel: str
    full: str
    st: os.stat_result


def scan(path: Path) -> tuple[bool, list[ScannedFile]]:
    """`(is_dir, files)` for a file or folder; symlinks and special files are refused, named."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise NotFound(f"no such file or folder: {path}") from exc
    except PermissionError as exc:
        raise InvalidInput(f"cannot read {path}: permission denied") from exc
    if stat_mod.S_ISLNK(st.st_mode):
        raise InvalidInput(f"{path} is a symlink; add the file or folder it points to instead")
    if stat_mod.S_ISREG(st.st_mode):
        return False, [ScannedFile(path.name, str(path), st)]
    if not stat_mod.S_ISDIR(st.st_mode):
        raise InvalidInput(f"{path} is not a regular file or folder")
    out: list[ScannedFile] = []
    _walk(str(path), "", out)
    out.sort(key=lambda f: f.rel)
    return True, out


def _walk(folder: str, prefix: str, out: list[ScannedFile]) -> None:
    try:
        entries = os.scandir(folder)
    except PermissionError as exc:
        raise InvalidInput(f"cannot read folder {folder}: permission denied") from exc
    with entries:
        for entry in entries:  # is_file / is_dir come from the listing: only files cost a stat
            if entry.is_file(follow_symlinks=False):
                out.append(ScannedFile(prefix + entry.name, entry.path, entry.stat(follow_symlinks=False)))
            elif entry.is_dir(follow_symlinks=False):
                _walk(entry.path, prefix + entry.name + "/", out)
            elif entry.is_symlink():
                raise InvalidInput(f"{entry.path} is a symlink; dataset folders hold regular files only")
            else:
                raise InvalidInput(f"{entry.path} is not a regular file")


def read_bytes(path: str, size: int = -1) -> bytes:
    """Read a (small) file whole; every content read of the data room goes through here or hash_large.
    With the `size` a stat gave, one read does it when the file still has that size."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            if size >= 0:
                first = os.read(fd, size + 1)
                if len(first) == size:  # asked for one byte more than there was: that is all
                    return first
                parts = [first]
            else:
                parts = []
            while chunk := os.read(fd, 1 << 20):
                parts.append(chunk)
        finally:
            os.close(fd)
        return parts[0] if len(parts) == 1 else b"".join(parts)
    except PermissionError as exc:
        raise InvalidInput(f"cannot read {path}: permission denied") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc


def hash_bytes(data: bytes) -> str:
    return PREFIX + blake3.blake3(data).hexdigest()


def hash_large(path: str) -> str:
    """A large file's digest (blake3 threads over mmap, as `mloop.artifacts.hashing.digest_of_file`)."""
    try:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return PREFIX + hasher.hexdigest()
    except PermissionError as exc:
        raise InvalidInput(f"cannot read {path}: permission denied") from exc


def digests_of(files: list[ScannedFile], cache: HashCache) -> list[str]:
    """Digest of every file: from the cache where trusted, else read and hashed (and recorded)."""
    known = cache.lookup(f.st for f in files)
    fresh = []
    for i, f in enumerate(files):
        if known[i] is None:
            size = f.st.st_size
            known[i] = hash_large(f.full) if size >= LARGE else hash_bytes(read_bytes(f.full, size))
            fresh.append((f.st, known[i]))
    cache.record(fresh)
    return known  # type: ignore[return-value]


def manifest_entries(files: list[ScannedFile], digests: list[str]) -> list[Entry]:
    from mloop.artifacts.manifest import Entry

    return [Entry(f.rel, d, f.st.st_size) for f, d in zip(files, digests, strict=True)]


def encode_manifest(files: list[ScannedFile], digests: list[str]) -> bytes:
    """The foundation's canonical manifest bytes (`artifacts.manifest.encode`), built fast for files
    that came from `scan` (sorted, relative and normalised by construction; checked cheaply here)."""
    from json.encoder import encode_basestring_ascii as quote

    lines = []
    previous = None
    for f, digest in zip(files, digests, strict=True):
        path = f.rel
        if "\\" in path or (previous is not None and path <= previous):
            from mloop.artifacts.manifest import encode

            return encode(manifest_entries(files, digests))  # the full checks raise the precise error
        previous = path
        lines.append(f'{{"path":{quote(path)},"digest":"{digest}","size":{f.st.st_size}}}')
    return ("\n".join(lines) + "\n").encode() if lines else b""


_STAT_KEY = attrgetter("st.st_dev", "st.st_ino", "st.st_size", "st.st_mtime_ns")


def tree_signature(files: list[ScannedFile]) -> tuple[str, int]:
    """`(signature, newest mtime_ns)` of a scanned tree: a digest of every file's relative path and
    identity (device, inode, size, mtime_ns). Equal signatures mean the hash cache would give every
    file the digest it gave before, so the tree's manifest digest can be reused (hashcache.trees)."""
    keys = list(map(_STAT_KEY, files))
    try:
        packed = array("q", chain.from_iterable(keys)).tobytes()
    except OverflowError:  # an inode number past 2**63
        packed = repr(keys).encode()
    hasher = blake3.blake3(packed)
    hasher.update("\0".join([f.rel for f in files]).encode("utf-8", "surrogateescape"))
    return hasher.hexdigest(), max(map(itemgetter(3), keys), default=0)


def table_format(files: list[ScannedFile]) -> str:
    """"parquet" or "csv" when every file is one of them (one kind), else "files"."""
    from mloop.data.profile import TABLE_SUFFIXES

    kinds = set()
    for f in files:
        name = f.rel.rsplit("/", 1)[-1]
        if name.startswith("."):
            return "files"
        suffix = os.path.splitext(name)[1].lower()
        if suffix not in TABLE_SUFFIXES:
            return "files"
        kinds.add("csv" if suffix == ".csv" else "parquet")
    return kinds.pop() if len(kinds) == 1 else "files"


# -- storing --------------------------------------------------------------------------------

_COPY_CHUNK = 8 << 20
RACY_NS = 2_000_000_000  # as the hash cache: a file written within 2 s may still be being written


def copy_hashing(src: str, dst: str, crash_label: str | None = None) -> str:
    """Copy `src` to a new file `dst` and return the digest of exactly the bytes written.

    Writes go out with O_DIRECT where the filesystem allows, so the copy neither fills the page
    cache nor leaves dirty pages to write back (most of what copying a large file costs). A file
    not written for 2 s is hashed and written straight from a read-only mapping, and its identity
    (inode, size, mtime, ctime) re-checked afterwards: a write meanwhile stamps an mtime past the
    old one, and then the copy is redone through a private buffer, where each chunk is read once,
    hashed and written from the same bytes.
    """
    import time

    try:
        before = os.stat(src)
    except FileNotFoundError as exc:
        raise NotFound(f"no such file: {src}") from exc
    if before.st_size and time.time_ns() - before.st_mtime_ns > RACY_NS:
        try:
            digest = _copy_mapped(src, dst, crash_label)
        except (OSError, ValueError) as exc:  # a filesystem without mmap: the buffered copy below
            if isinstance(exc, InvalidInput | NotFound):
                raise
            if os.path.exists(dst):
                os.unlink(dst)
            return _copy_buffered(src, dst, crash_label)
        after = os.stat(src)
        same = (after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns)
        if same == (before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns):
            return digest
        os.unlink(dst)
    return _copy_buffered(src, dst, crash_label)


def _open_out(dst: str) -> tuple[int, int]:
    direct = getattr(os, "O_DIRECT", 0)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return os.open(dst, flags | direct, 0o644), direct
    except OSError:
        return os.open(dst, flags, 0o644), 0


def _write_at(fout: int, chunk: memoryview, pos: int, direct: int) -> int:
    """Write a chunk at `pos`; drops O_DIRECT for a tail that is not whole blocks. Returns `direct`."""
    if direct and len(chunk) % 4096:
        direct = _buffered(fout, direct)
    written = 0
    while written < len(chunk):
        try:
            written += os.pwrite(fout, chunk[written:], pos + written)
        except OSError as exc:
            if not direct or exc.errno != errno.EINVAL:
                raise
            direct = _buffered(fout, direct)  # the filesystem took O_DIRECT at open but not here
    return direct


def _buffered(fout: int, direct: int) -> int:
    import fcntl

    fcntl.fcntl(fout, fcntl.F_SETFL, fcntl.fcntl(fout, fcntl.F_GETFL) & ~direct)
    return 0


def _copy_mapped(src: str, dst: str, crash_label: str | None) -> str:
    import mmap

    import blake3

    fin = _open_in(src)
    try:
        size = os.fstat(fin).st_size
        fout, direct = _open_out(dst)
        mapped = mmap.mmap(fin, size, prot=mmap.PROT_READ)
        view = memoryview(mapped)
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        try:
            for pos in range(0, size, _COPY_CHUNK):
                chunk = view[pos: pos + _COPY_CHUNK]
                hasher.update(chunk)
                direct = _write_at(fout, chunk, pos, direct)
                if crash_label:
                    crash_point(crash_label)
                    crash_label = None
        finally:
            chunk = None
            view.release()
            mapped.close()
            os.close(fout)
    finally:
        os.close(fin)
    return PREFIX + hasher.hexdigest()


def _open_in(src: str) -> int:
    try:
        return os.open(src, os.O_RDONLY)
    except PermissionError as exc:
        raise InvalidInput(f"cannot read {src}: permission denied") from exc
    except FileNotFoundError as exc:
        raise NotFound(f"no such file: {src}") from exc


def _copy_buffered(src: str, dst: str, crash_label: str | None) -> str:
    import mmap

    import blake3

    fin = _open_in(src)
    try:
        fout, direct = _open_out(dst)
        buf = mmap.mmap(-1, _COPY_CHUNK)
        view = memoryview(buf)
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        try:
            pos = 0
            while True:
                n = os.preadv(fin, [buf], pos)
                if n == 0:
                    break
                chunk = view[:n]
                hasher.update(chunk)
                direct = _write_at(fout, chunk, pos, direct)
                pos += n
                if crash_label:
                    crash_point(crash_label)
                    crash_label = None
        finally:
            chunk = None
            view.release()
            buf.close()
            os.close(fout)
    finally:
        os.close(fin)
    return PREFIX + hasher.hexdigest()


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view):]


class _LocalWriter:
    """Writes blobs into a local blob store folder: temp files (loose blobs, or one pack for many
    small ones), one syncfs, then renames."""

    def __init__(self, root: str | os.PathLike, *, list_dirs: bool = False) -> None:
        from mloop.artifacts import packs

        self.blobs = f"{os.fspath(root)}/blobs"
        self.pending: list[tuple[str, str]] = []  # (tmp, key)
        self.dirs: set[str] = set()
        self.keys: set[str] = set()
        self.token = f"{os.getpid()}-{os.urandom(6).hex()}"
        self.count = 0
        # Many files: list each prefix folder once instead of one stat per blob.
        self.listed: dict[str, set[str]] | None = {} if list_dirs else None
        self.crash_mid_write = os.environ.get("MLOOP_CRASH_AT") == "blob.write"
        self.root = root
        self.packed = packs.index_for(root)
        self.packed.catch_up()
        # Many small blobs go into one pack (two files) instead of one file each; the first few are
        # held in memory until there are enough of them to fill a pack, else they are written loose.
        self.packer: packs.PackWriter | None = None
        self.held: list[tuple[str, bytes]] = []
        self.pack_limit, self.pack_from = packs.MAX_BLOB, packs.MIN_BLOBS

    def key(self, digest: str) -> str:
        h = digest[len(PREFIX):]
        return f"{self.blobs}/{h[:2]}/{h[2:]}"

    def _tmp_for(self, key: str) -> str:
        parent = key[: key.rfind("/")]
        if parent not in self.dirs:
            os.makedirs(parent, exist_ok=True)
            self.dirs.add(parent)
        self.count += 1
        return f"{key}.tmp-{self.token}-{self.count}"

    def has(self, digest: str) -> bool:
        return self.missing_key(digest) is None

    def missing_key(self, digest: str) -> str | None:
        """Where the blob goes if it is neither stored nor pending, else None."""
        h = digest[len(PREFIX):]
        key = f"{self.blobs}/{h[:2]}/{h[2:]}"
        if key in self.keys or self.packed.find(digest, look_again=False) is not None:
            return None
        if self.listed is None:
            return None if os.path.exists(key) else key
        names = self.listed.get(h[:2])
        if names is None:
            try:
                names = set(os.listdir(f"{self.blobs}/{h[:2]}"))
            except FileNotFoundError:
                names = set()
            self.listed[h[:2]] = names
        return None if h[2:] in names else key

    def put_bytes(self, digest: str, data: bytes) -> None:
        key = self.missing_key(digest)
        if key is None:
            return
        self.keys.add(key)
        if len(data) >= self.pack_limit:
            self._write_loose(key, data)
        elif self.packer is not None:
            self.packer.add(digest, data)
            if self.crash_mid_write:
                crash_point("blob.write")
        else:
            self.held.append((digest, data))
            if len(self.held) >= self.pack_from:
                from mloop.artifacts.packs import PackWriter

                self.packer = PackWriter(self.root, self.token)
                for held in self.held:
                    self.packer.add(*held)
                self.held.clear()

    def _write_loose(self, key: str, data: bytes) -> None:
        tmp = self._tmp_for(key)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if self.crash_mid_write:  # the crash test's point: half a blob written, under its temp name
                _write_all(fd, memoryview(data)[: len(data) // 2])
                crash_point("blob.write")
                _write_all(fd, memoryview(data)[len(data) // 2:])
            else:
                written = os.write(fd, data)
                if written < len(data):
                    _write_all(fd, memoryview(data)[written:])
        finally:
            os.close(fd)
        self.pending.append((tmp, key))

    def put_large(self, src: str) -> str:
        """Copy, hash the copy, keep it under its digest; returns the digest."""
        tmp = self._tmp_for(self.key(PREFIX + "0" * 64))
        try:
            digest = copy_hashing(src, tmp, crash_label="blob.write")
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        if self.has(digest):
            os.unlink(tmp)
            return digest
        key = self.key(digest)
        parent = key[: key.rfind("/")]
        if parent not in self.dirs:
            os.makedirs(parent, exist_ok=True)
            self.dirs.add(parent)
        self.pending.append((tmp, key))
        self.keys.add(key)
        return digest

    def commit(self) -> None:
        """Make every pending blob durable, then visible under its digest."""
        for digest, data in self.held:  # too few to pack
            self._write_loose(self.key(digest), data)
        self.held.clear()
        packed = self.packer is not None and self.packer.stage()
        if not self.pending and not packed:
            return
        syncfs(self.blobs if self.pending else self.packer.dir)  # type: ignore[union-attr]
        for tmp, key in self.pending:
            os.replace(tmp, key)
        if packed:
            self.packer.publish()  # type: ignore[union-attr]
        syncfs(self.blobs if self.pending else self.packer.dir)  # type: ignore[union-attr]
        self.pending.clear()

    def abort(self) -> None:
        if self.packer is not None:
            self.packer.abort()
        for tmp, _ in self.pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self.pending.clear()


def syncfs(folder: str) -> None:
    """Flush every dirty page of the filesystem holding `folder` (one call for many files), else sync()."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def store_files(files: list[ScannedFile], cache: HashCache, root: str | os.PathLike | None,
                extra: Callable[[list[str]], list[bytes]] | None = None) -> tuple[list[str], list[str]]:
    """Store every file's content (once per digest), then the byte strings `extra(digests)` returns
    (the manifest, a sample), into the local blob folder `root`, or the configured blob store when
    None; all become visible together. Returns (file digests in order, extra digests)."""
    known = cache.lookup(f.st for f in files)
    fresh: list[tuple[os.stat_result, str]] = []
    if root is not None:
        writer = _LocalWriter(root, list_dirs=len(files) > 4096)
        try:
            for i, f in enumerate(files):
                digest = known[i]
                if digest is not None and writer.has(digest):
                    continue
                if f.st.st_size >= LARGE:
                    digest = writer.put_large(f.full)
                else:
                    data = read_bytes(f.full, f.st.st_size)
                    digest = PREFIX + blake3.blake3(data).hexdigest()
                    writer.put_bytes(digest, data)
                known[i] = digest
                fresh.append((f.st, digest))
            crash_point("data.add.blobs_staged")
            extra_digests = []
            for data in (extra(known) if extra else []):  # type: ignore[arg-type]
                extra_digests.append(hash_bytes(data))
                writer.put_bytes(extra_digests[-1], data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    else:
        from concurrent.futures import ThreadPoolExecutor

        from mloop.artifacts.blobs import get_blob_store

        store = get_blob_store()
        for i, f in enumerate(files):
            if known[i] is None:
                known[i] = hash_large(f.full) if f.st.st_size >= LARGE else hash_bytes(read_bytes(f.full))
                fresh.append((f.st, known[i]))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda pair: store.put_file(pair[0].full, pair[1]), zip(files, known, strict=True)))
        extra_digests = [store.put_bytes(data) for data in (extra(known) if extra else [])]  # type: ignore[arg-type]
    cache.record(fresh)
    return known, extra_digests  # type: ignore[return-value]
