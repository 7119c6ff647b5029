"""DESIGN.md's layer rule, enforced from the imports of every module (lazy ones included).

A room imports only rooms below it in this list; cli and api may import any. The top-level
config.py, errors.py, _faults.py and __init__.py are shared by every room.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mloop"
ROOMS = ["cli", "api", "ui", "demo", "pipelines", "serving", "monitoring", "features", "validation", "data",
         "registry", "tracking", "store", "artifacts"]
TOP = {"cli", "api"}  # may import any room
SHARED = {"config", "errors", "_faults", "__init__"}
ALIASES = {"models": "registry"}  # public names of rooms, as `from mloop import models`

# Upward imports DESIGN.md names, each inside a function (lazy):
ALLOWED: dict[str, set[str]] = {
    # Run.use_dataset / Run.log_model (DESIGN.md's two named exceptions)
    "tracking/run.py": {"data", "registry"},
    # the lazy re-export of mloop.artifacts.list / download, which read run artifacts
    "artifacts/__init__.py": {"tracking"},
}

ML_LIBRARIES = {"sklearn", "numpy", "pandas", "scipy", "polars", "pyarrow", "torch", "tensorflow", "keras",
                "xgboost", "lightgbm", "onnx", "onnxruntime", "skl2onnx", "onnxmltools", "skops", "matplotlib",
                "ray", "duckdb"}
ML_FREE = {"store": ML_LIBRARIES - {"pyarrow"},  # the prediction log's schema is pyarrow's
           "artifacts": ML_LIBRARIES}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _room_of(rel: Path) -> str:
    if len(rel.parts) == 1:
        name = rel.stem
        return "cli" if name == "__main__" else f"shared:{name}"
    return rel.parts[0]


def _imported(path: Path, package: list[str] | None = None) -> list[tuple[str, int]]:
    """Absolute dotted names imported anywhere in the module (relative imports resolved)."""
    if package is None:
        package = list(path.relative_to(SRC.parent).parent.parts)  # e.g. ["mloop", "tracking"]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            out.append((module, node.lineno))
            if module == "mloop":  # `from mloop import data` imports the room; other names are shared
                out += [(f"mloop.{a.name}", node.lineno) for a in node.names if a.name in (*ROOMS, *ALIASES)]
    return out


def _target_room(dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts[0] != "mloop":
        return None
    if len(parts) == 1:
        return "shared:__init__"
    name = ALIASES.get(parts[1], parts[1])
    return name if name in ROOMS else f"shared:{name}"


def test_every_module_is_in_a_known_room():
    strays = []
    for path in _modules():
        room = _room_of(path.relative_to(SRC))
        if room.startswith("shared:"):
            if room.split(":")[1] not in SHARED:
                strays.append(str(path.relative_to(SRC)))
        elif room not in ROOMS:
            strays.append(str(path.relative_to(SRC)))
    assert not strays, f"modules outside DESIGN.md's rooms (add the room to DESIGN.md and this test): {strays}"


def test_rooms_import_only_rooms_below_them():
    problems = []
    for path in _modules():
        rel = path.relative_to(SRC)
        room = _room_of(rel)
        if room in TOP or rel.as_posix() == "__init__.py":
            continue
        allowed = ALLOWED.get(rel.as_posix(), set())
        for dotted, line in _imported(path):
            target = _target_room(dotted)
            if target is None or target == room:
                continue
            if target.startswith("shared:"):
                if target.split(":")[1] not in SHARED:
                    problems.append(f"{rel}:{line} imports {dotted}, which is in no room")
                continue
            if room.startswith("shared:"):
                problems.append(f"{rel}:{line} (shared by every room) imports the room {target} ({dotted})")
            elif ROOMS.index(target) <= ROOMS.index(room) and target not in allowed:
                problems.append(f"{rel}:{line} ({room}) imports {dotted} ({target} is not below {room})")
    assert not problems, "layer rule broken (DESIGN.md, Layers):\n" + "\n".join(problems)


@pytest.mark.parametrize("room", sorted(ML_FREE))
def test_store_and_artifacts_know_nothing_about_ml(room):
    problems = []
    for path in sorted((SRC / room).rglob("*.py")):
        for dotted, line in _imported(path):
            if dotted.split(".")[0] in ML_FREE[room]:
                problems.append(f"{path.relative_to(SRC)}:{line} imports {dotted}")
    assert not problems, f"{room}/ must not import ML libraries:\n" + "\n".join(problems)


def test_checker_sees_lazy_relative_and_from_mloop_imports(tmp_path):
    """The checker itself: imports inside functions, relative imports and `from mloop import x`."""
    sample = tmp_path / "probe.py"
    sample.write_text("def f():\n    from mloop import models\n    from ..serving import app\n"
                      "    import mloop.pipelines.dag\n")
    names = {d for d, _ in _imported(sample, ["mloop", "tracking"])}
    assert {"mloop.models", "mloop.serving", "mloop.pipelines.dag"} <= names
    assert _target_room("mloop.models") == "registry"
