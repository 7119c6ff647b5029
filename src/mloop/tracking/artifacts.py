"""Reading a run's artifacts back: `mloop.artifacts.list(run_id, path)` and `.download(...)`.

A run's artifacts form one tree: a logged file is a leaf, a logged folder is a directory blob
whose manifest supplies the files below it. `list` shows the direct children of a path (files and
folders, as `mlflow artifacts list` does); `download` writes a file or a whole folder, verified.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path, PurePosixPath

from mloop.artifacts import get_blob_store
from mloop.artifacts.manifest import Entry
from mloop.errors import NotFound
from mloop.store.db import get_store
from mloop.store.tracking import RunArtifactRepo, RunRepo


def _logged(run_id: str) -> builtins.list[dict]:
    store = get_store()
    RunRepo(store).get(run_id)  # NotFound naming the run
    return RunArtifactRepo(store).list(run_id)


def _files(logged: builtins.list[dict]) -> builtins.list[Entry]:
    """Every file of the run's artifact tree, folders expanded through their manifests."""
    blobs = get_blob_store()
    out = []
    for item in logged:
        if item["is_dir"]:
            out += [Entry(f"{item['path']}/{e.path}", e.digest, e.size) for e in blobs.read_manifest(item["digest"])]
        else:
            out.append(Entry(item["path"], item["digest"], item["size"]))
    return sorted(out, key=lambda e: e.path)


def _missing(run_id: str, path: str, logged: builtins.list[dict]) -> NotFound:
    known = ", ".join(a["path"] for a in logged) or "none"
    return NotFound(f"run {run_id} has no artifact {path!r} (artifacts: {known})")


def list(run_id: str, path: str = "") -> builtins.list[dict]:  # noqa: A001 - the public name
    """The direct children of `path` in a run's artifacts: `[{"path", "is_dir", "size", "digest"}]`.

    A folder's size is the sum of its files; its digest is its manifest's when it was logged as a
    folder, else None. A `path` naming a file lists that file.

    >>> mloop.artifacts.list(run.id, "plots")  # doctest: +SKIP
    [{'path': 'plots/roc.png', 'is_dir': False, 'size': 20531, 'digest': 'blake3:…'}]
    """
    logged = _logged(run_id)
    prefix = str(PurePosixPath(path.strip("/"))) if path.strip("/") else ""
    files = _files(logged)
    exact = [f for f in files if f.path == prefix]
    if exact:
        return [{"path": f.path, "is_dir": False, "size": f.size, "digest": f.digest} for f in exact]
    folder_digests = {a["path"]: a["digest"] for a in logged if a["is_dir"]}
    base = prefix + "/" if prefix else ""
    children: dict[str, dict] = {}
    for f in files:
        if not f.path.startswith(base):
            continue
        head, _, rest = f.path[len(base):].partition("/")
        child = base + head
        if rest:
            entry = children.setdefault(child, {"path": child, "is_dir": True, "size": 0,
                                                "digest": folder_digests.get(child)})
            entry["size"] += f.size
        else:
            children[child] = {"path": child, "is_dir": False, "size": f.size, "digest": f.digest}
    if prefix and not children and prefix not in folder_digests:
        raise _missing(run_id, path, logged)
    return [children[k] for k in sorted(children)]


def download(run_id: str, path: str = "", dest: str | os.PathLike = ".") -> Path:
    """Write the artifact at `path` (a file or a folder; "" for all of them) into folder `dest`.

    Returns the written path: `dest/<name of path>`, or `dest` itself for the whole tree. Every
    byte is verified against its digest, and a folder appears only once all of it verified.
    """
    logged = _logged(run_id)
    blobs = get_blob_store()
    prefix = str(PurePosixPath(path.strip("/"))) if path.strip("/") else ""
    files = _files(logged)
    dest = Path(dest)
    for f in files:
        if f.path == prefix:
            return blobs.copy_to(f.digest, dest / PurePosixPath(prefix).name)
    base = prefix + "/" if prefix else ""
    below = [Entry(f.path[len(base):], f.digest, f.size) for f in files if f.path.startswith(base)]
    if prefix and not below and not any(a["path"] == prefix for a in logged):
        raise _missing(run_id, path, logged)
    target = dest / PurePosixPath(prefix).name if prefix else dest
    return blobs.copy_tree(below, target)
