"""Git-friendly pointers: `PATH.mloop` beside the data names its version; git ignores the data.

Pointers are written only inside the project (the folder of the nearest `.mloop/` or git root).
Committing one pins the data version in git, as a `.dvc` file does. This module stays light
(no database, no fsspec): `mloop data status` runs on it and the hash cache alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from mloop.data.versions import DatasetVersion

SUFFIX = ".mloop"
HEADER = "# mloop dataset pointer: commit this file; git ignores the data it names (mloop data checkout)\n"
_SKIP_DIRS = {".git", ".mloop", "__pycache__", "node_modules"}


@dataclass(frozen=True)
class Pointer:
    """A parsed pointer file: where the data belongs and which version it is."""

    file: Path  # the .mloop file
    name: str
    version: int
    digest: str  # the version's manifest digest
    kind: str  # "file" | "dir"
    content: str | None  # for a file: the file's own digest
    size: int
    files: int

    @property
    def data_path(self) -> Path:
        return self.file.with_name(self.file.name[: -len(SUFFIX)])

    @property
    def uri(self) -> str:
        return f"datasets:/{self.name}@{self.version}"


def pointer_file(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + SUFFIX)


def _project_root() -> Path | None:
    from mloop.config import project_root

    return project_root()


def inside_project(path: Path) -> Path | None:
    """The project root if `path` lies inside the project (and outside `.mloop/`), else None."""
    root = _project_root()
    if root is None:
        return None
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    if not rel.parts or rel.parts[0] in (".mloop", ".git"):
        return None
    return root


def write_pointer(data_path: Path, dv: DatasetVersion) -> Path | None:
    """Write `data_path.mloop` and a `.gitignore` entry for the data, if inside the project."""
    data_path = data_path.absolute()
    if inside_project(data_path) is None:
        return None
    entries = dv.files
    lines = [
        HEADER,
        f"name: {dv.name}\n",
        f"version: {dv.version}\n",
        f"digest: {dv.digest}\n",
        f"kind: {'dir' if dv.is_dir else 'file'}\n",
    ]
    if not dv.is_dir:
        lines.append(f"content: {entries[0].digest}\n")
    lines += [f"size: {dv.size}\n", f"files: {dv.file_count}\n"]
    target = pointer_file(data_path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(lines))
    os.replace(tmp, target)
    _ignore(data_path)
    return target


def _ignore(data_path: Path) -> None:
    gitignore = data_path.parent / ".gitignore"
    line = "/" + data_path.name
    existing = gitignore.read_text().splitlines() if gitignore.exists() else []
    if line in existing:
        return
    text = "\n".join(existing)
    if text and not text.endswith("\n"):
        text += "\n"
    gitignore.write_text(text + line + "\n")


def read_pointer(file: Path) -> Pointer:
    """Parse a pointer file (InvalidInput naming it when malformed)."""
    try:
        text = file.read_text()
    except FileNotFoundError as exc:
        raise NotFound(f"no pointer file {file}") from exc
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise InvalidInput(f"{file}: malformed pointer line {line!r} (expected 'key: value')")
        fields[key.strip()] = value.strip()
    try:
        return Pointer(file=file.absolute(), name=fields["name"], version=int(fields["version"]),
                       digest=fields["digest"], kind=fields.get("kind", "file"), content=fields.get("content"),
                       size=int(fields.get("size", 0)), files=int(fields.get("files", 1)))
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"{file}: not a valid mloop pointer ({exc}); restore it from git") from exc


def find_pointers(root: Path) -> list[Pointer]:
    """Every pointer under `root` (hidden folders and tracked data folders are not descended)."""
    found: list[Path] = []
    _find(str(root), found)
    return [read_pointer(p) for p in sorted(found)]


def _find(folder: str, found: list[Path]) -> None:
    try:
        entries = list(os.scandir(folder))
    except (PermissionError, FileNotFoundError):
        return
    names = {e.name for e in entries}
    for entry in entries:
        if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    for entry in entries:
        if (entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".")
                and entry.name not in _SKIP_DIRS and entry.name + SUFFIX not in names):
            _find(entry.path, found)


def targets(target: str | os.PathLike | None) -> list[Pointer]:
    """Pointers named by a CLI target: None (every pointer in the project, or under the cwd), a
    pointer file, a data path with a pointer beside it, or a folder to search."""
    if target is None:
        root = _project_root() or Path.cwd()
        return find_pointers(root)
    path = Path(target).absolute()
    if path.name.endswith(SUFFIX) and path.is_file():
        return [read_pointer(path)]
    beside = pointer_file(path)
    if beside.is_file():
        return [read_pointer(beside)]
    if path.is_dir():
        return find_pointers(path)
    raise NotFound(f"no pointer for {path} (expected {beside}); add the data with 'mloop data add {target}'")
