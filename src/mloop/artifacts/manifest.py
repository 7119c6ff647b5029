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
    seen = set()
    lines = []
    for e in ordered:
        check_relative(e.path)
        if e.path in seen:
            raise InvalidInput(f"duplicate path in a directory blob: {e.path!r}")
        seen.add(e.path)
        lines.append(json.dumps({"path": e.path, "digest": e.digest, "size": e.size}, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def decode(data: bytes, digest: str = "?") -> list[Entry]:
    """Parse manifest bytes, re-checking every path."""
    entries = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            entry = Entry(path=raw["path"], digest=raw["digest"], size=int(raw["size"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBlob(f"blob {digest} is not a directory manifest (line {n}: {exc})") from exc
        check_relative(entry.path)
        entries.append(entry)
    return entries
