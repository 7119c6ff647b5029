"""Writing a version's files out: `checkout` (to the pointer's place or a destination) and `.path`.

Files are written by reflink where the filesystem has it, else copied; `link="hardlink"` links
to the blob and makes it read-only (an in-place edit would corrupt the cache); a blob kept in a
pack (artifacts/packs.py) is always copied out. Every blob is
verified against its digest on the way out (CorruptBlob, named, and nothing written). Files that
already hold the right content (hash cache) are left alone; a checked-out folder becomes exactly
the version's folder.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mloop.data import ingest
from mloop.data.hashcache import HashCache
from mloop.errors import CorruptBlob, InvalidInput, NotFound

if TYPE_CHECKING:  # mloop.artifacts loads on first use: `mloop data status` does not need it
    from mloop.artifacts.blobs import BlobStore
    from mloop.artifacts.manifest import Entry
    from mloop.data.pointers import Pointer
    from mloop.data.versions import DatasetVersion

Link = Literal["copy", "hardlink"]
_FICLONE = 0x40049409
_reflink_works: bool | None = None


# -- the local blob store, without fsspec when it is a plain folder ---------------------------

def local_blob_root() -> Path | None:
    """The local artifact folder (None when the artifact store is remote)."""
    from mloop.config import get_settings

    uri = get_settings().artifact_uri
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    if "://" in uri:
        return None
    return Path(uri)


def blob_path(root: Path, digest: str) -> Path:
    from mloop.artifacts.hashing import hex_of

    h = hex_of(digest)
    return root / "blobs" / h[:2] / h[2:]


def read_manifest(digest: str) -> list[Entry]:
    """A directory manifest, verified; from the local folder when possible."""
    root = local_blob_root()
    if root is not None:
        from mloop.artifacts.packs import read_local

        data = read_local(root, digest)  # loose or packed, verified
        if data is None:
            raise NotFound(f"blob {digest} is not in the local artifact store {root}; "
                           "fetch it with 'mloop data pull'")
        from mloop.artifacts.manifest import decode

        return decode(data, digest)
    from mloop.artifacts.blobs import get_blob_store

    return get_blob_store().read_manifest(digest)


# -- writing files --------------------------------------------------------------------------

def _reflink(src: str, dst: str) -> bool:
    global _reflink_works
    if _reflink_works is False:
        return False
    import fcntl

    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        _reflink_works = True
        return True
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            _reflink_works = False
        return False


def _tmp_beside(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{os.urandom(6).hex()}")


def _corrupt(digest: str, dest: Path, where: object) -> CorruptBlob:
    return CorruptBlob(f"blob {digest} in {where} does not match its digest; {dest} was not written "
                       "(restore the blob with 'mloop data pull', or re-add the data)")


def place(entry_digest: str, size: int, dest: Path, link: Link, store: BlobStore | None, root: Path | None) -> None:
    """Write one blob to `dest` (atomically, verified)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if root is None:
        assert store is not None
        store.copy_to(entry_digest, dest)  # streamed and verified by the blob store
        return
    src = str(blob_path(root, entry_digest))
    packed = None
    if not os.path.exists(src):
        packed = _packed(root, entry_digest, dest)
        if packed is None:
            raise NotFound(f"blob {entry_digest} for {dest} is not in the local artifact store {root}; "
                           "fetch it with 'mloop data pull'")
    tmp = _tmp_beside(dest)
    try:
        if packed is not None:  # a packed blob is copied out, whatever `link` says
            with open(tmp, "wb") as fh:
                fh.write(packed)
        elif link == "hardlink":
            if (ingest.hash_large(src) if size >= ingest.LARGE else ingest.hash_bytes(ingest.read_bytes(src))) \
                    != entry_digest:
                raise _corrupt(entry_digest, dest, root)
            os.chmod(src, 0o444)
            os.link(src, tmp)
        elif size >= ingest.LARGE:
            if _reflink(src, str(tmp)):
                if ingest.hash_large(str(tmp)) != entry_digest:
                    raise _corrupt(entry_digest, dest, root)
            else:
                if tmp.exists():
                    tmp.unlink()
                if ingest.copy_hashing(src, str(tmp)) != entry_digest:
                    raise _corrupt(entry_digest, dest, root)
            os.chmod(tmp, 0o644)
        else:
            data = ingest.read_bytes(src)
            if ingest.hash_bytes(data) != entry_digest:
                raise _corrupt(entry_digest, dest, root)
            with open(tmp, "wb") as fh:
                fh.write(data)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def _packed(root: Path, digest: str, dest: Path | str) -> bytes | None:
    """A packed blob's bytes, verified (None when no pack holds it)."""
    from mloop.artifacts.packs import index_for

    try:
        return index_for(root).read(digest)
    except CorruptBlob as exc:
        raise _corrupt(digest, Path(dest), root) from exc


class _SmallFiles:
    """Writes many small files out of a local blob folder: one read, one hash, one write each."""

    def __init__(self, root: Path) -> None:
        from mloop.artifacts.packs import index_for

        self.blobs = f"{root}/blobs"
        self.root = root
        self.packed = index_for(root)
        self.made: set[str] = set()
        self.token = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.count = 0

    def write(self, digest: str, size: int, dest: Path, rel: str) -> os.stat_result:
        h = digest[len("blake3:"):]
        src = f"{self.blobs}/{h[:2]}/{h[2:]}"
        target = f"{dest}/{rel}"
        data = None
        if self.packed.find(digest, look_again=False) is not None:
            data = _packed(self.root, digest, target)
        if data is None:
            try:
                data = ingest.read_bytes(src, size)
            except InvalidInput:
                if os.path.exists(src):
                    raise
                data = _packed(self.root, digest, target)
                if data is None:
                    raise NotFound(f"blob {digest} for {target} is not in the local artifact store {self.root}; "
                                   "fetch it with 'mloop data pull'") from None
            else:
                if ingest.hash_bytes(data) != digest:
                    raise _corrupt(digest, Path(target), self.root)
        cut = target.rfind("/")
        parent, name = target[:cut], target[cut + 1:]
        if parent not in self.made:
            os.makedirs(parent, exist_ok=True)
            self.made.add(parent)
        self.count += 1
        tmp = f"{parent}/.{name}.tmp-{self.token}-{self.count}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            st = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise
        return st


def write_entries(entries: list[Entry], dest: Path, *, is_dir: bool, link: Link = "copy") -> dict:
    """Make `dest` hold exactly `entries` (a folder) or the single entry (a file)."""
    if link not in ("copy", "hardlink"):
        raise InvalidInput(f"link must be 'copy' or 'hardlink', not {link!r}")
    root = local_blob_root()
    store = None
    if root is None:
        from mloop.artifacts.blobs import get_blob_store

        store = get_blob_store()
    written = unchanged = removed = 0
    with HashCache.open() as cache:
        if is_dir:
            if dest.exists() and not dest.is_dir():
                raise InvalidInput(f"{dest} is a file; a folder version needs a folder there (move the file)")
            existing = {}
            if dest.is_dir():
                _, files = ingest.scan(dest)
                digests = cache.lookup(f.st for f in files)
                existing = {f.rel: (f, d) for f, d in zip(files, digests, strict=True)}
            wanted = {e.path: e for e in entries}  # paths were checked when the manifest was read
            for rel, (f, _) in existing.items():
                if rel not in wanted:
                    os.unlink(f.full)
                    removed += 1
            fresh = []
            small = _SmallFiles(root) if root is not None and link == "copy" else None
            for rel, e in wanted.items():
                have = existing.get(rel)
                if have is not None and have[0].st.st_size == e.size and _same(have, e, cache):
                    unchanged += 1
                    continue
                if small is not None and e.size < ingest.LARGE:
                    fresh.append((small.write(e.digest, e.size, dest, rel), e.digest))
                else:
                    target = dest / rel
                    place(e.digest, e.size, target, link, store, root)
                    fresh.append((os.stat(target), e.digest))
                written += 1
            cache.record(fresh)
            dest.mkdir(parents=True, exist_ok=True)
            if removed:
                _prune_empty(dest)
        else:
            e = entries[0]
            if dest.is_dir():
                dest = dest / Path(e.path).name
            if dest.is_file() and dest.stat().st_size == e.size:
                st = dest.stat()
                known = cache.lookup([st])[0] or _hash(str(dest), st.st_size)
                if known == e.digest:
                    return {"path": str(dest), "written": 0, "unchanged": 1, "removed": 0}
            place(e.digest, e.size, dest, link, store, root)
            cache.record([(os.stat(dest), e.digest)])
            written = 1
    return {"path": str(dest), "written": written, "unchanged": unchanged, "removed": removed}


def _hash(path: str, size: int) -> str:
    return ingest.hash_large(path) if size >= ingest.LARGE else ingest.hash_bytes(ingest.read_bytes(path))


def _same(have: tuple, entry: Entry, cache: HashCache) -> bool:
    f, known = have
    if known is None:
        known = _hash(f.full, f.st.st_size)
        cache.record([(f.st, known)])
    return known == entry.digest


def _prune_empty(folder: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        if dirpath != str(folder) and not dirnames and not filenames:
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


# -- public operations ----------------------------------------------------------------------

def _is_uri(target: str) -> bool:
    if target.startswith("datasets:/"):
        return True
    path = Path(target)
    return not (path.exists() or Path(target + ".mloop").exists())


def checkout(target: str | os.PathLike | None = None, dest: str | os.PathLike | None = None,
             link: Link = "copy") -> list[dict]:
    """Write data out. No target: every pointer in the project. A pointer file or a data path:
    that pointer's version, to its place. A URI: that version, to `dest` (default: where it was
    added from, or `./<name>` ...), and the pointer there (in the project) then names that version.
    For a file version `dest` may be an existing folder.

        >>> mloop.data.checkout("churn-train@1")  # doctest: +SKIP
    """
    if target is not None and _is_uri(str(target)):
        from mloop.data.pointers import pointer_file, write_pointer
        from mloop.data.versions import resolve

        dv = resolve(str(target))
        out = (Path(dest) if dest is not None else _default_dest(dv)).absolute()
        result = write_entries(dv.files, out, is_dir=dv.is_dir, link=link)
        # the pointer beside the data names what is there now (to its place, or where one already is)
        if dest is None or pointer_file(Path(result["path"])).exists():
            write_pointer(Path(result["path"]), dv)
        return [{**result, "uri": dv.uri}]
    from mloop.data.pointers import targets

    pointers = targets(target)
    if dest is not None and len(pointers) != 1:
        raise InvalidInput(f"--dest needs exactly one pointer, but {target or 'the project'} has {len(pointers)}")
    results = []
    for p in pointers:
        results.append(checkout_pointer(p, Path(dest).absolute() if dest is not None else None, link=link))
    return results


def checkout_pointer(p: Pointer, dest: Path | None = None, link: Link = "copy") -> dict:
    entries = read_manifest(p.digest)
    result = write_entries(entries, dest or p.data_path, is_dir=p.kind == "dir", link=link)
    return {**result, "uri": p.uri}


def _default_dest(dv: DatasetVersion) -> Path:
    from mloop.config import project_root

    if dv.source:
        source = Path(dv.source)
        if not source.is_absolute():
            root = project_root()
            return (root or Path.cwd()) / source
        return source
    return Path.cwd() / (f"{dv.name}.parquet" if dv.format == "parquet" and not dv.is_dir else dv.name)


def materialise(dv: DatasetVersion) -> Path:
    """The version's files in `$MLOOP_HOME/cache/datasets/<digest>/` (read-only hardlinks into a
    local blob store, else copies); a file version returns the file inside that folder."""
    from mloop.artifacts.hashing import hex_of
    from mloop.config import get_settings

    base = get_settings().home / "cache" / "datasets"
    final = base / hex_of(dv.digest)
    if not final.is_dir():
        tmp = base / f".{final.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        try:
            write_entries(dv.files, tmp, is_dir=True, link="hardlink" if local_blob_root() else "copy")
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
        finally:
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
    return final if dv.is_dir else final / dv.files[0].path
