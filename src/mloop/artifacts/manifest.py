"""Directory manifests: JSON lines `{"path", "digest", "size"}` sorted by POSIX path.

Paths are relative and normalised: no `..`, no absolute parts, no empty parts. They are checked
when a manifest is built and again when one is read for copying out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from mloop.errors import CorruptBlob, InvalidInput


@dataclass(frozen=True)
class Entry:
    """One file of a directory blob."""

    path: str
    digest: str
    size: int


def check_relative(path: str) -> str:
    """Return `path` if it is a safe, normalised relative POSIX path, else raise InvalidInput."""
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
        or str(pure) != path
    ):
        raise InvalidInput(f"unsafe path in a directory blob: {path!r} (must be relative, without '..')")
    return path


def encode(entries: list[Entry]) -> bytes:
    """The canonical manifest bytes (equal trees give equal bytes, hence equal digests)."""
    ordered = sorted(entries, key=lambda e: e.path)
    _check_tree(ordered, InvalidInput)
    lines = [json.dumps({"path": e.path, "digest": e.digest, "size": e.size}, separators=(",", ":"))
             for e in ordered]
    return ("\n".join(lines) + "\n").encode() if lines else b""


def decode(data: bytes, digest: str = "?") -> list[Entry]:
    """Parse manifest bytes, re-checking every path (a hand-made manifest may hold anything)."""
    entries = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptBlob(f"blob {digest} is not a directory manifest ({exc})") from exc
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            entry = Entry(path=raw["path"], digest=raw["digest"], size=int(raw["size"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBlob(f"blob {digest} is not a directory manifest (line {n}: {exc})") from exc
        if not isinstance(entry.path, str):
            raise CorruptBlob(f"blob {digest} is not a directory manifest (line {n}: path is not a string)")
        entries.append(entry)
    _check_tree(sorted(entries, key=lambda e: e.path), InvalidInput)
    return entries


def _check_tree(ordered: list[Entry], error: type[Exception]) -> None:
    """Safe relative paths, well-formed digests, no duplicates, no file that is also a folder."""
    from mloop.artifacts.hashing import is_digest

    files = set()
    for e in ordered:
        check_relative(e.path)
        if not is_digest(e.digest):
            raise error(f"bad digest {e.digest!r} for {e.path!r} in a directory blob")
        if e.path in files:
            raise error(f"duplicate path in a directory blob: {e.path!r}")
        files.add(e.path)
    for path in files:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise error(f"{'/'.join(parts[:i])!r} is both a file and a folder in a directory blob")
