"""A verified local load cache for scikit-learn models: a fresh process that loads a model this
machine already loaded (or logged) unpickles `$MLOOP_HOME/cache/models/<hex>.pkl` instead of
importing skops and rebuilding the estimator from the artifact store.

Security model. The artifact store is never unpickled: models there stay skops files, loaded
with exactly the types their manifest recorded, after their digest is verified. A cache entry is
written only (a) right after such a verified skops load of the blob with digest D, or (b) by
`log_model` from the in-process object it has just saved as D. The entry is keyed by D and is
integrity-protected with HMAC-SHA256 under a per-home secret, `cache/models/.key` (32 random
bytes, created 0600 with O_CREAT|O_EXCL, owned by the current user); the MAC covers D, the header
and the pickle, so an entry cannot be edited, forged or moved to another digest's name without
the key. An entry whose MAC does not verify (`hmac.compare_digest`), that does not unpickle, or
whose header's library versions (Python, and each top-level library the model's classes come
from, e.g. scikit-learn, numpy, scipy) differ from the installed ones is a miss: the model is
loaded through skops again and the entry rewritten. If the key cannot be created or read
privately (wrong owner, group/other bits, not a regular file, wrong size), the cache is off.
So a pickle is only ever read from the user's own cache, written by this user's mloop from a
verified model; anyone able to write the key can already run code as this user.
`MLOOP_MODEL_CACHE=0` turns the cache off.

File layout: `MAGIC | mac (32) | header length (4, big-endian) | header (JSON) | pickle (protocol 5)`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import stat
import sys
from pathlib import Path
from typing import Any

MAGIC = b"MLOOPMC1"
KEY_FILE = ".key"
KEY_BYTES = 32
_MAC_BYTES = 32
# Top-level modules whose versions are always recorded (what a scikit-learn pickle depends on).
_BASE_MODULES = ("sklearn", "numpy", "scipy")
_SKIP_ROOTS = {"builtins", "__main__", "mloop", "copyreg"}


def enabled() -> bool:
    return os.environ.get("MLOOP_MODEL_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def folder() -> Path:
    from mloop.config import get_settings

    return get_settings().home / "cache" / "models"


def path_for(digest: str) -> Path:
    return folder() / f"{_hex(digest)}.pkl"


def _hex(digest: str) -> str:
    hexpart = digest.split(":", 1)[-1]
    if not hexpart or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"not a digest: {digest!r}")
    return hexpart


# -- the key ------------------------------------------------------------------------------------
def _read_key(path: Path) -> bytes | None:
    """The key if `path` is a private regular file of ours holding exactly 32 bytes, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != KEY_BYTES or st.st_mode & 0o077:
            return None
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            return None
        data = os.read(fd, KEY_BYTES + 1)
        return data if len(data) == KEY_BYTES else None
    finally:
        os.close(fd)


def _create_key(path: Path) -> None:
    """Write a fresh key next to `path` (O_CREAT|O_EXCL, 0600) and link it in place; losing a
    race to another process is fine (its key is then read)."""
    tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.write(fd, os.urandom(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, never replaces an existing key, never exposes a partial one
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


_keys: dict[Path, bytes] = {}


def key(create: bool = True) -> bytes | None:
    """This home's cache key (created on first use), or None when the cache is unusable."""
    base = folder()
    path = base / KEY_FILE
    cached = _keys.get(path)
    if cached is not None:
        return cached
    value = _read_key(path)
    if value is None and create and not os.path.lexists(path):
        try:
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_key(path)
        except OSError:
            return None
        value = _read_key(path)
    if value is not None:
        _keys[path] = value
    return value


def _mac(secret: bytes, digest: str, body: bytes | memoryview) -> bytes:
    h = hmac.new(secret, digestmod=hashlib.sha256)
    h.update(MAGIC + digest.encode() + b"\0")
    h.update(body)
    return h.digest()


# -- library versions ---------------------------------------------------------------------------
def _python() -> str:
    return "{}.{}.{}".format(*sys.version_info[:3])


def _module_version(root: str) -> str | None:
    module = sys.modules.get(root)
    if module is None:
        import importlib

        try:
            module = importlib.import_module(root)
        except Exception:  # noqa: BLE001 - a missing library: the entry cannot be used
            return None
    version = getattr(module, "__version__", None)
    return str(version) if version is not None else ""


def _libraries(model: Any) -> dict[str, str]:
    from mloop.registry.requirements import _object_modules

    roots = set(_BASE_MODULES) | _object_modules(model)
    stdlib = sys.stdlib_module_names
    out = {}
    for root in sorted(roots):
        if root in stdlib or root in _SKIP_ROOTS or root.startswith("_"):
            continue
        version = _module_version(root)
        if version is not None:
            out[root] = version
    return out


# -- entries ------------------------------------------------------------------------------------
def put(digest: str, model: Any, manifest: dict) -> bool:
    """Write the entry for `digest` (atomically: temp file + os.replace); False when the cache is
    off or the model does not pickle. Callers pass only a model verified to be `digest`'s."""
    if not enabled():
        return False
    secret = key()
    if secret is None:
        return False
    try:
        payload = pickle.dumps({"model": model, "manifest": manifest}, protocol=5)
        header = json.dumps({"digest": digest, "python": _python(), "libraries": _libraries(model)},
                            sort_keys=True).encode()
    except Exception:  # noqa: BLE001 - an unpicklable model is simply not cached
        return False
    body = len(header).to_bytes(4, "big") + header + payload
    target = path_for(digest)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC)
            fh.write(_mac(secret, digest, body))
            fh.write(body)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def get(digest: str) -> tuple[Any, dict, dict] | None:
    """`(model, manifest, libraries)` from the entry for `digest`, or None on any miss (no entry,
    bad MAC, another digest's entry, a library version change, an unpicklable payload)."""
    if not enabled():
        return None
    try:
        target = path_for(digest)
        with open(target, "rb") as fh:
            data = fh.read()
    except (OSError, ValueError):
        return None
    secret = key(create=False)
    if secret is None or len(data) < len(MAGIC) + _MAC_BYTES + 4 or not data.startswith(MAGIC):
        return None
    view = memoryview(data)
    mac = bytes(view[len(MAGIC):len(MAGIC) + _MAC_BYTES])
    body = view[len(MAGIC) + _MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(secret, digest, body)):
        return None
    size = int.from_bytes(body[:4], "big")
    try:
        header = json.loads(bytes(body[4:4 + size]))
    except ValueError:
        return None
    if header.get("digest") != digest or header.get("python") != _python():
        return None
    libraries = header.get("libraries") or {}
    for root, version in libraries.items():
        if _module_version(root) != version:
            return None
    try:
        entry = pickle.loads(body[4 + size:])  # noqa: S301 - our own MAC-verified entry (module docstring)
        return entry["model"], entry["manifest"], libraries
    except Exception:  # noqa: BLE001 - an entry that no longer unpickles is a miss
        return None
