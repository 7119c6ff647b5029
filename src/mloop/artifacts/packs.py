"""Packs: many small blobs in one file, so storing 10,000 small files creates two files, not 10,000.

A local blob store keeps a blob either loose (`blobs/<2 hex>/<62 hex>`) or in a pack, as git does:
`packs/<id>.pack` holds the blobs' bytes back to back and `packs/<id>.idx` a table of (digest,
offset, size) sorted by digest, then the blake3 of all of it. The index is renamed into place last,
once the pack is durable, so a blob becomes visible only whole, and a killed writer leaves nothing
but temp files (`.tmp-` names, which `mloop data gc` sweeps). Readers verify every blob against its
digest, as for loose blobs. Only local stores pack; remotes keep one object per blob.

This module needs only the standard library and blake3 (`mloop data add` imports it, not fsspec).
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass

import blake3

from mloop.errors import CorruptBlob

log = logging.getLogger(__name__)

PREFIX = "blake3:"
MAGIC = b"MLOOPPK1"
RECORD = struct.Struct(">32sQQ")  # raw digest, offset in the pack, size
MAX_BLOB = 256 << 10  # larger blobs stay loose: their copy costs more than their file creation
MIN_BLOBS = 64  # an add with fewer new small blobs than this writes them loose
MAX_PACK = 1 << 30  # a writer starts a new pack past this many bytes
RACY_NS = 2_000_000_000
_BUFFER = 8 << 20  # a pack writer's staging buffer
_ALIGN = 4096  # O_DIRECT writes whole blocks from aligned memory


def _pwrite_all(fd: int, view: memoryview, pos: int) -> None:
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


@dataclass(frozen=True, slots=True)
class Location:
    pack: str  # the pack's path
    offset: int
    size: int


def pack_dir(root: str | os.PathLike) -> str:
    return f"{os.fspath(root)}/packs"


class PackIndex:
    """Where each packed blob of one local store lives; loaded on first use, re-read when packs change."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.dir = pack_dir(root)
        self._where: dict[bytes, tuple[str, int, int]] = {}
        self._loaded: set[str] = set()
        self._seen_mtime: int | None = None
        self._looked = False
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}

    # -- finding ----------------------------------------------------------------------------
    def find(self, digest: str, *, look_again: bool = True) -> Location | None:
        """The blob's place in a pack, or None when no pack holds it. On a miss the pack folder is
        listed again if it may have changed since it was read (`look_again=False`: never; a writer
        that loaded the index once only risks storing a blob twice)."""
        key = _raw(digest)
        if key is None:
            return None
        if not self._looked:
            self.refresh()
        hit = self._where.get(key)
        if hit is None and look_again and self._may_have_changed():
            self.refresh()
            hit = self._where.get(key)
        return None if hit is None else Location(*hit)

    def __contains__(self, digest: str) -> bool:
        return self.find(digest) is not None

    def digests(self) -> list[str]:
        """Every packed blob's digest."""
        self.refresh()
        return [PREFIX + key.hex() for key in self._where]

    def packs(self) -> dict[str, list[tuple[str, int, int]]]:
        """`{pack path: [(digest, offset, size), ...]}` of every indexed pack (for gc)."""
        self.refresh()
        out: dict[str, list[tuple[str, int, int]]] = {}
        for key, (pack, offset, size) in self._where.items():
            out.setdefault(pack, []).append((PREFIX + key.hex(), offset, size))
        return out

    def catch_up(self) -> None:
        """Read the packs written since this index last looked (a writer calls this once, then finds
        with `look_again=False`)."""
        if not self._looked or self._may_have_changed():
            self.refresh()

    def _may_have_changed(self) -> bool:
        """True if the folder's mtime moved, or is so recent that a change in the same clock tick
        (file times are coarse) could hide behind it."""
        try:
            mtime = os.stat(self.dir).st_mtime_ns
        except FileNotFoundError:
            return self._seen_mtime is not None
        return mtime != self._seen_mtime or time.time_ns() - mtime < RACY_NS

    def refresh(self) -> None:
        """Read the index files written since the last look, and forget packs that are gone."""
        with self._lock:
            self._looked = True
            try:
                self._seen_mtime = os.stat(self.dir).st_mtime_ns
                names = {n for n in os.listdir(self.dir) if n.endswith(".idx") and ".tmp-" not in n}
            except FileNotFoundError:
                self._seen_mtime, names = None, set()
            gone = self._loaded - names
            if gone:
                self._forget(gone)
            for name in sorted(names - self._loaded):
                self._load(name)

    def _load(self, name: str) -> None:
        path = f"{self.dir}/{name}"
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:  # removed by gc meanwhile
            return
        self._loaded.add(name)
        try:
            records = decode_index(data, path)
        except CorruptBlob as exc:  # its blobs read as missing; every other pack stays usable
            log.warning("%s", exc)
            return
        pack = path[: -len(".idx")] + ".pack"
        for key, offset, size in records:
            self._where[key] = (pack, offset, size)

    def _forget(self, names: set[str]) -> None:
        packs = {f"{self.dir}/{n[: -len('.idx')]}.pack" for n in names}
        self._where = {k: v for k, v in self._where.items() if v[0] not in packs}
        self._loaded -= names
        for pack in packs:
            fd = self._fds.pop(pack, None)
            if fd is not None:
                os.close(fd)

    # -- reading ----------------------------------------------------------------------------
    def read(self, digest: str) -> bytes | None:
        """The packed blob's bytes, verified against its digest (None when no pack holds it)."""
        where = self.find(digest)
        if where is None:
            return None
        try:
            data = self._pread(where)
        except FileNotFoundError:  # the pack was repacked by gc: look again
            self.refresh()
            where = self.find(digest)
            if where is None:
                return None
            data = self._pread(where)
        if PREFIX + blake3.blake3(data).hexdigest() != digest:
            raise CorruptBlob(f"blob {digest} in pack {where.pack} does not match its digest; it was not used")
        return data

    def _pread(self, where: Location) -> bytes:
        fd = self._fds.get(where.pack)
        if fd is None:
            with self._lock:
                fd = self._fds.get(where.pack)
                if fd is None:
                    fd = self._fds[where.pack] = os.open(where.pack, os.O_RDONLY)
        data = os.pread(fd, where.size, where.offset)
        if len(data) != where.size:
            raise CorruptBlob(f"pack {where.pack} is shorter than its index says; it was not used")
        return data

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _raw(digest: str) -> bytes | None:
    try:
        return bytes.fromhex(digest[len(PREFIX):]) if digest.startswith(PREFIX) else None
    except ValueError:
        return None


def encode_index(records: list[tuple[bytes, int, int]]) -> bytes:
    body = MAGIC + struct.pack(">Q", len(records)) + b"".join(RECORD.pack(*r) for r in sorted(records))
    return body + blake3.blake3(body).digest()


def decode_index(data: bytes, where: str) -> list[tuple[bytes, int, int]]:
    body, trailer = data[:-32], data[-32:]
    if len(data) < len(MAGIC) + 8 + 32 or not body.startswith(MAGIC) or blake3.blake3(body).digest() != trailer:
        raise CorruptBlob(f"pack index {where} is damaged (bad header or checksum); remove it and its .pack "
                          "and re-add or pull the data")
    (count,) = struct.unpack_from(">Q", body, len(MAGIC))
    start = len(MAGIC) + 8
    if len(body) != start + count * RECORD.size:
        raise CorruptBlob(f"pack index {where} has the wrong length for its {count} entries")
    return list(RECORD.iter_unpack(body[start:]))


class PackWriter:
    """Appends blobs to a new pack under temp names; `stage()` writes its index, `publish()` makes
    both visible (index last). The caller makes the temp files durable between the two.

    Blobs are gathered in an aligned buffer and written with O_DIRECT where the filesystem allows:
    a pack bypasses the page cache, so neither the copy into it nor a later write-back of dirty
    pages is paid (most of what writing 100 MB of small blobs costs otherwise)."""

    def __init__(self, root: str | os.PathLike, token: str) -> None:
        self.dir = pack_dir(root)
        self.token = token
        self.count = 0
        self._fd: int | None = None
        self._direct = 0
        self._records: list[tuple[bytes, int, int]] = []
        self._offset = 0  # bytes in the pack so far (written + buffered)
        self._written = 0  # bytes on disk (a multiple of _ALIGN while direct)
        self._buf: mmap.mmap | None = None
        self._view: memoryview | None = None
        self._fill = 0
        self._done: list[tuple[str, str, str, str]] = []  # (tmp pack, tmp idx, pack, idx), staged
        self._tmp: str | None = None
        self._temps: list[str] = []  # every temp file made, for abort

    def add(self, digest: str, data: bytes) -> None:
        if self._fd is None or self._offset >= MAX_PACK:
            self._roll()
        n = len(data)
        if self._fill + n > _BUFFER:
            self._flush(final=False)
        if n > _BUFFER - self._fill:  # bigger than the buffer: straight through (never with MAX_BLOB)
            self._flush(final=True)
            _pwrite_all(self._fd, memoryview(data), self._written)
            self._written += n
        else:
            self._view[self._fill:self._fill + n] = data  # type: ignore[index]
            self._fill += n
        self._records.append((bytes.fromhex(digest[len(PREFIX):]), self._offset, n))
        self._offset += n

    def _flush(self, *, final: bool) -> None:
        """Write the buffer out: all of it when `final`, else its whole aligned blocks (O_DIRECT)."""
        fill = self._fill
        if not fill:
            return
        view = self._view
        if self._direct and (final or fill % _ALIGN):
            whole = fill - fill % _ALIGN
            if final:
                if whole:
                    _pwrite_all(self._fd, view[:whole], self._written)
                self._written += whole
                self._buffered()  # the tail is not whole blocks: an ordinary write
                _pwrite_all(self._fd, view[whole:fill], self._written)
                self._written += fill - whole
                self._fill = 0
                return
            _pwrite_all(self._fd, view[:whole], self._written)
            self._written += whole
            view[: fill - whole] = view[whole:fill]
            self._fill = fill - whole
            return
        _pwrite_all(self._fd, view[:fill], self._written)
        self._written += fill
        self._fill = 0

    def _buffered(self) -> None:
        if self._direct:
            import fcntl

            fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~self._direct)
            self._direct = 0

    def _roll(self) -> None:
        if self._fd is not None:
            self._finish()
        os.makedirs(self.dir, exist_ok=True)
        self.count += 1
        self._tmp = f"{self.dir}/pack.tmp-{self.token}-{self.count}"
        self._temps.append(self._tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        direct = getattr(os, "O_DIRECT", 0)
        try:
            self._fd, self._direct = os.open(self._tmp, flags | direct, 0o644), direct
        except OSError:  # tmpfs and others refuse O_DIRECT
            self._fd, self._direct = os.open(self._tmp, flags, 0o644), 0
        if self._buf is None:
            self._buf = mmap.mmap(-1, _BUFFER)  # page-aligned, as O_DIRECT needs
            self._view = memoryview(self._buf)
        self._records, self._offset, self._written, self._fill = [], 0, 0, 0

    def _finish(self) -> None:
        assert self._fd is not None and self._tmp is not None
        try:
            self._flush(final=True)
        finally:
            os.close(self._fd)
            self._fd = None
        if not self._records:
            os.unlink(self._tmp)
            return
        index = encode_index(self._records)
        name = blake3.blake3(index).hexdigest()[:40]
        tmp_idx = f"{self._tmp}.idx"
        self._temps.append(tmp_idx)
        with open(tmp_idx, "xb") as fh:
            fh.write(index)
        self._done.append((self._tmp, tmp_idx, f"{self.dir}/{name}.pack", f"{self.dir}/{name}.idx"))

    def stage(self) -> bool:
        """Close the open pack and write its index under a temp name; True if there is anything to publish."""
        if self._fd is not None:
            self._finish()
        self._release()
        return bool(self._done)

    def _release(self) -> None:
        if self._buf is not None:
            self._view.release()  # type: ignore[union-attr]
            self._buf.close()
            self._buf = self._view = None

    def publish(self) -> None:
        """Rename every staged pack into place, then its index: the blobs become visible."""
        for tmp_pack, tmp_idx, pack, idx in self._done:
            os.replace(tmp_pack, pack)
            os.replace(tmp_idx, idx)
        self._done.clear()
        self._temps.clear()

    def abort(self) -> None:
        """Remove every temp file (nothing was published)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._release()
        for path in self._temps:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._temps.clear()
        self._done.clear()


_indexes: dict[str, PackIndex] = {}


def index_for(root: str | os.PathLike) -> PackIndex:
    """The process-wide pack index of the local store at `root`."""
    key = os.path.abspath(os.fspath(root))
    index = _indexes.get(key)
    if index is None:
        index = _indexes[key] = PackIndex(key)
    return index


def read_local(root: str | os.PathLike, digest: str) -> bytes | None:
    """A blob of the local store at `root`, packed or loose, verified; None when it holds neither."""
    index = index_for(root)
    if index.find(digest, look_again=False) is not None:
        return index.read(digest)
    h = digest[len(PREFIX):]
    try:
        with open(f"{os.fspath(root)}/blobs/{h[:2]}/{h[2:]}", "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return index.read(digest)
    if PREFIX + blake3.blake3(data).hexdigest() != digest:
        raise CorruptBlob(f"blob {digest} in {os.fspath(root)} does not match its digest; it was not used")
    return data


def _forget() -> None:
    for index in _indexes.values():
        index.close()
    _indexes.clear()


def _register() -> None:
    from mloop.config import on_reset

    on_reset(_forget)


_register()
