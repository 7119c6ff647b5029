"""Where things live: settings from the environment, `[tool.mloop]` in the nearest pyproject.toml,
then defaults (DESIGN.md, "Where things live"). `mloop.configure(...)` overrides in-process.

    >>> import mloop
    >>> mloop.configure(tracking_uri="sqlite:////tmp/x/mloop.db")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from mloop.errors import InvalidInput

_ENV = {
    "home": "MLOOP_HOME",
    "tracking_uri": "MLOOP_TRACKING_URI",
    "artifact_uri": "MLOOP_ARTIFACT_URI",
    "executor": "MLOOP_EXECUTOR",
    "online_store": "MLOOP_ONLINE_STORE",
    "heartbeat_s": "MLOOP_HEARTBEAT_S",
}
_PATH_KEYS = ("home", "artifact_uri")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; every field is final (no further lookup happens downstream)."""

    home: Path
    tracking_uri: str
    artifact_uri: str
    executor: str = "local"
    online_store: str = ""
    heartbeat_s: float = 10.0

    @property
    def is_embedded(self) -> bool:
        """True when the metadata store is a local SQLite file (not reachable from other hosts)."""
        return self.tracking_uri.startswith("sqlite")


_lock = threading.Lock()
_cached: Settings | None = None
_overrides: dict[str, object] = {}


def find_home(start: Path | None = None) -> Path:
    """The nearest `.mloop/` walking up from `start` (the cwd), else `./.mloop`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".mloop").is_dir():
            return folder / ".mloop"
    return here / ".mloop"


def project_root(start: Path | None = None) -> Path | None:
    """The folder holding the nearest `.mloop/` or `.git`, or None outside any project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".mloop").is_dir() or (folder / ".git").exists():
            return folder
    return None


def _pyproject_settings(start: Path) -> dict[str, object]:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            import tomllib

            try:
                table = tomllib.loads(candidate.read_text()).get("tool", {}).get("mloop", {})
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInput(f"{candidate}: not valid TOML ({exc}); fix or remove [tool.mloop]") from exc
            unknown = set(table) - set(_ENV)
            if unknown:
                raise InvalidInput(
                    f"{candidate}: unknown [tool.mloop] key(s) {sorted(unknown)}; known: {sorted(_ENV)}"
                )
            return {k: _resolve_relative(k, v, folder) for k, v in table.items()}
    return {}


def _resolve_relative(key: str, value: object, base: Path) -> object:
    if key in _PATH_KEYS and isinstance(value, str) and "://" not in value and value:
        return str((base / os.path.expanduser(value)).resolve())
    if key in ("tracking_uri", "online_store") and isinstance(value, str) and value.startswith("sqlite:///"):
        path = value[len("sqlite:///") :]
        if path and not os.path.isabs(path):
            return "sqlite:///" + str((base / path).resolve())
    return value


def _load() -> Settings:
    cwd = Path.cwd().resolve()
    values: dict[str, object] = dict(_pyproject_settings(cwd))
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = _resolve_relative(key, os.environ[env], cwd)  # relative to the cwd
    values.update(_overrides)
    home = Path(str(values.get("home") or find_home(cwd))).expanduser().resolve()
    tracking = str(values.get("tracking_uri") or f"sqlite:///{home / 'mloop.db'}")
    artifacts = str(values.get("artifact_uri") or home / "artifacts")
    online = str(values.get("online_store") or f"sqlite:///{home / 'online.db'}")
    try:
        heartbeat = float(values.get("heartbeat_s") or 10.0)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"MLOOP_HEARTBEAT_S must be a number of seconds, got {values['heartbeat_s']!r}") from exc
    if heartbeat <= 0:
        raise InvalidInput(f"MLOOP_HEARTBEAT_S must be positive, got {heartbeat}")
    return Settings(
        home=home,
        tracking_uri=tracking,
        artifact_uri=artifacts,
        executor=str(values.get("executor") or "local"),
        online_store=online,
        heartbeat_s=heartbeat,
    )


def get_settings() -> Settings:
    """The current settings (read once, then cached until `reset()` or `configure()`)."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = _load()
        return _cached


def configure(**overrides: object) -> Settings:
    """Override settings in this process (`home`, `tracking_uri`, `artifact_uri`, `executor`, ...).

    Passing `None` for a key removes its override. Open stores are closed so the next use
    re-opens them at the new location.
    """
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise InvalidInput(f"unknown setting(s) {sorted(unknown)}; known: {sorted(_ENV)}")
    for key, value in overrides.items():
        if value is None:
            _overrides.pop(key, None)
        else:
            value = os.fspath(value) if isinstance(value, os.PathLike) else value
            _overrides[key] = _resolve_relative(key, value, Path.cwd().resolve())
    return reset(keep_overrides=True)


def reset(*, keep_overrides: bool = False) -> Settings:
    """Forget cached settings and open stores; re-read the environment and pyproject.toml."""
    global _cached
    with _lock:
        if not keep_overrides:
            _overrides.clear()
        _cached = None
    for hook in list(_reset_hooks):
        hook()
    return get_settings()


_reset_hooks: list = []


def on_reset(hook) -> None:
    """Register a callable run whenever settings change (stores drop their cached engines)."""
    _reset_hooks.append(hook)


def init_home(path: Path | None = None) -> Path:
    """Create `.mloop/` in `path` (the cwd) with its logs and cache folders; return it."""
    home = (path or Path.cwd()).resolve() / ".mloop"
    for sub in ("", "logs", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    gitignore = home / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# mloop's local store, cache and logs\n*\n")
    reset(keep_overrides=True)
    return home
