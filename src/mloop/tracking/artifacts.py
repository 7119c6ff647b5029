"""Reading a run's artifacts back: `mloop.artifacts.list(run_id)` and `.download(...)`."""

from __future__ import annotations

import os
from pathlib import Path

from mloop.artifacts import get_blob_store
from mloop.errors import NotFound
from mloop.store.db import get_store
from mloop.store.tracking import RunArtifactRepo, RunRepo


def list(run_id: str, path: str = "") -> list[dict]:  # noqa: A001 - the public name
    """Artifacts of a run under `path`: `[{"path", "digest", "size", "is_dir"}]`."""
    store = get_store()
    RunRepo(store).get(run_id)
    prefix = path.strip("/")
    items = RunArtifactRepo(store).list(run_id)
    if prefix:
        items = [a for a in items if a["path"] == prefix or a["path"].startswith(prefix + "/")]
    return items


def download(run_id: str, path: str, dest: str | os.PathLike = ".") -> Path:
    """Write the artifact at `path` (a file or folder) into `dest`; returns the written path."""
    blobs = get_blob_store()
    wanted = path.strip("/")
    for item in list(run_id):
        if item["path"] == wanted:
            target = Path(dest) / Path(wanted).name
            return blobs.copy_to(item["digest"], target, is_dir=item["is_dir"])
    known = ", ".join(a["path"] for a in list(run_id)) or "none"
    raise NotFound(f"run {run_id} has no artifact {path!r} (artifacts: {known})")
