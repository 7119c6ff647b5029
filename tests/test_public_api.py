"""`mloop.__all__` is the public surface (pinned here, as httpx pins its exports), and it is cheap:
`import mloop` and `mloop --help` load no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mloop

CORE = [
    "Run", "__version__", "active_run", "artifacts", "config", "configure", "delete_run", "end_run", "errors",
    "get_run", "log_artifact", "log_artifacts", "log_dict", "log_figure", "log_metric", "log_metrics", "log_param",
    "log_params", "log_text", "metric_history", "restore_run", "search_runs", "set_experiment", "set_tag",
    "set_tags", "start_run", "tracking",
]
# Names a room adds once its package exists (DESIGN.md's public surface).
ROOM_NAMES = {
    "registry": ["autolog", "evaluate", "models", "registry"], "data": ["data"], "validation": ["validation"],
    "pipelines": ["DatasetRef", "gate", "pipeline", "pipelines", "step", "steps"], "serving": ["serving"],
    "monitoring": ["monitoring"],
    "features": ["features"],
}
SRC = Path(mloop.__file__).parent
HEAVY = ["sqlalchemy", "pandas", "sklearn", "numpy", "pyarrow", "duckdb", "fastapi", "scipy", "ray"]


def _expected() -> list[str]:
    names = list(CORE)
    for room, added in ROOM_NAMES.items():
        if (SRC / room / "__init__.py").is_file():
            names += added
    return sorted(names)


def test_all_is_pinned():
    assert mloop.__all__ == _expected()


@pytest.mark.parametrize("name", _expected())
def test_every_public_name_resolves(name):
    assert getattr(mloop, name) is not None


def test_rooms_resolve_to_their_modules():
    import mloop.artifacts
    import mloop.tracking

    assert mloop.tracking is sys.modules["mloop.tracking"]
    assert mloop.artifacts.get_blob_store is not None
    assert mloop.start_run is mloop.tracking.start_run
    assert mloop.configure is mloop.config.configure
    if "models" in mloop.__all__:
        assert mloop.models is mloop.registry is sys.modules["mloop.registry"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mloop.nope  # noqa: B018


def test_tracking_and_artifacts_all_resolve():
    import mloop.artifacts
    import mloop.tracking

    for module in (mloop.tracking, mloop.artifacts):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, timeout=60, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}


def test_import_mloop_loads_no_heavy_library():
    loaded = _loaded_after("import mloop")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_mloop_help_loads_no_heavy_library():
    code = ("import sys\nsys.argv = ['mloop', '--help']\nfrom mloop.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n")
    loaded = _loaded_after(code)
    assert not loaded & {"sqlalchemy", "pandas", "sklearn", "numpy", "pyarrow", "duckdb", "scipy"}, \
        sorted(loaded & set(HEAVY))
