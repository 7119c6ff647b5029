"""Content-addressed blobs over fsspec (DESIGN.md, "Blobs"). Knows nothing about ML.

    >>> from mloop.artifacts import get_blob_store
    >>> digest = get_blob_store().put(b"hello")  # doctest: +SKIP

`list(run_id)` and `download(run_id, path, dest)` read a run's artifacts back; they live in
`tracking/` (which owns run artifacts) and are re-exported here lazily.
"""

from mloop.artifacts.blobs import BlobStore, get_blob_store, walk_files
from mloop.artifacts.hashing import digest_of_bytes, digest_of_file, is_digest
from mloop.artifacts.manifest import Entry

__all__ = [
    "BlobStore",
    "get_blob_store",
    "walk_files",
    "digest_of_bytes",
    "digest_of_file",
    "is_digest",
    "Entry",
    "list",
    "download",
]


def __getattr__(name: str):  # noqa: ANN202
    if name in ("list", "download"):
        from mloop.tracking import artifacts as run_artifacts  # lazy: tracking sits above this room

        return getattr(run_artifacts, name)
    raise AttributeError(f"module 'mloop.artifacts' has no attribute {name!r}")
