"""blake3 digests, written `blake3:<hex>`. Large files hash with blake3's threads over mmap."""

from __future__ import annotations

import os
import re

import blake3

PREFIX = "blake3:"
_THREADED_FROM = 4 << 20  # below 4 MiB, threads cost more than they save
_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")


def digest_of_bytes(data: bytes) -> str:
    """The digest of an in-memory byte string."""
    return PREFIX + blake3.blake3(data).hexdigest()


def digest_of_file(path: str | os.PathLike) -> str:
    """The digest of a file's content, streamed (never whole in memory)."""
    size = os.path.getsize(path)
    if size >= _THREADED_FROM:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(os.fspath(path))
        return PREFIX + hasher.hexdigest()
    hasher = blake3.blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return PREFIX + hasher.hexdigest()


def new_hasher() -> blake3.blake3:
    """An incremental hasher, for content streamed from elsewhere."""
    return blake3.blake3()


def hex_of(digest: str) -> str:
    """The hex part of `blake3:<hex>`, checked."""
    hexpart = digest[len(PREFIX):] if isinstance(digest, str) and digest.startswith(PREFIX) else ""
    if not _HEX.fullmatch(hexpart):
        from mloop.errors import InvalidInput

        raise InvalidInput(f"not a blob digest: {digest!r} (expected 'blake3:' and 64 lowercase hex digits)")
    return hexpart


def is_digest(value: str) -> bool:
    """True for a well-formed `blake3:<64 hex>` string."""
    return isinstance(value, str) and value.startswith(PREFIX) and bool(_HEX.fullmatch(value[len(PREFIX):]))


__all__ = ["PREFIX", "digest_of_bytes", "digest_of_file", "new_hasher", "hex_of", "is_digest"]
