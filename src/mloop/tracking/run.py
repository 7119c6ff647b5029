"""`Run`: one tracked training run, as a handle to log into and as a loaded record."""

from __future__ import annotations

import io
import json
import os
import traceback
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput
from mloop.store.schema import now_ms
from mloop.store.tracking import EnvironmentRepo, ParamRepo, RunArtifactRepo, RunRepo, TagRepo
from mloop.tracking.writer import get_writer

if TYPE_CHECKING:
    from mloop.store.db import Store

MAX_KEY = 250


def _check_key(kind: str, key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY:
        raise InvalidInput(f"{kind} key must be a non-empty string of at most {MAX_KEY} characters, got {key!r}")
    return key


def _as_float(key: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metric {key!r} must be a number, got {value!r}") from exc


class Run:
    """A run: `id, name, experiment, status, params, metrics, tags, start_time, end_time, parent_id,
    environment`. An active run (from `start_run`) also logs; a loaded one (from `get_run`) reads.

    >>> with mloop.start_run(experiment="churn") as run:  # doctest: +SKIP
    ...     run.log_metric("loss", 0.3, step=1)
    """

    def __init__(self, record: dict, store: Store, *, active: bool = False) -> None:
        self._record = record
        self._store = store
        self._active = active
        self._owner = True  # False for the handle a nested-in-step start_run() hands back
        self._latest: dict[str, tuple[int, int]] = {}  # key -> (step, ts) of the value in `metrics`

    # -- record -----------------------------------------------------------------------------
    id = property(lambda self: self._record["id"])
    name = property(lambda self: self._record["name"])
    experiment = property(lambda self: self._record["experiment"])
    experiment_id = property(lambda self: self._record["experiment_id"])
    parent_id = property(lambda self: self._record["parent_id"])
    user = property(lambda self: self._record["user"])
    start_time = property(lambda self: self._record["start_ms"])
    end_time = property(lambda self: self._record["end_ms"])
    error = property(lambda self: self._record.get("error"))

    @property
    def status(self) -> str:
        return self._record["status"]

    @property
    def params(self) -> dict[str, str]:
        return dict(self._record["params"])

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._record["tags"])

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value per key (highest step, then newest timestamp)."""
        return dict(self._record["metrics"])

    @property
    def environment(self) -> dict:
        env_id = self._record.get("environment_id")
        return EnvironmentRepo(self._store).get(env_id) if env_id else {}

    @property
    def store(self) -> Store:
        return self._store

    def refresh(self) -> Run:
        """Re-read the record from the store (flushing this process's buffered metrics first)."""
        if self._active:
            get_writer(self._store).flush()
        self._record = RunRepo(self._store).get(self.id)
        self._latest = {}
        return self

    def to_dict(self) -> dict:
        """The run as plain data; NaN and inf metrics stay floats (JSON printers map them to strings)."""
        keys = ("id", "name", "experiment", "experiment_id", "status", "parent_id", "user")
        out = {k: self._record[k] for k in keys}
        out.update(start_time=self.start_time, end_time=self.end_time, error=self.error, params=self.params,
                   metrics=self.metrics, tags=self.tags)
        return out

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, name={self.name!r}, experiment={self.experiment!r}, status={self.status!r})"

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
            for k, v in [("id", self.id), ("name", self.name), ("experiment", self.experiment),
                         ("status", self.status), *[(f"params.{a}", b) for a, b in self.params.items()],
                         *[(f"metrics.{a}", b) for a, b in self.metrics.items()]]
        )
        return f"<table>{rows}</table>"

    # -- logging ----------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record a param as `str(value)`; the same value again is a no-op, another is a Conflict."""
        self.log_params({key: value})

    def log_params(self, values: dict[str, Any]) -> None:
        clean = {_check_key("param", k): str(v) for k, v in values.items()}
        if clean:
            ParamRepo(self._store).log(self.id, clean)
            self._record["params"].update(clean)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, values: dict[str, Any]) -> None:
        clean = {_check_key("tag", k): str(v) for k, v in values.items()}
        if clean:
            TagRepo(self._store).set(self.id, clean)
            self._record["tags"].update(clean)

    def log_metric(self, key: str, value: float, step: int | None = None, timestamp: int | None = None) -> None:
        """Buffer one metric value (committed within a second, and at the end of the run).

        NaN and inf are kept as such. `step` defaults to 0 and `timestamp` (int ms) to now.
        """
        row = (self.id, _check_key("metric", key), _as_float(key, value), 0 if step is None else int(step),
               now_ms() if timestamp is None else int(timestamp))
        get_writer(self._store).add(row)
        self._note_latest(row)

    def log_metrics(self, values: dict[str, float], step: int | None = None, timestamp: int | None = None) -> None:
        """Buffer several metrics at one step and timestamp."""
        ts = now_ms() if timestamp is None else int(timestamp)
        st = 0 if step is None else int(step)
        rows = [(self.id, _check_key("metric", k), _as_float(k, v), st, ts) for k, v in values.items()]
        get_writer(self._store).add_many(rows)
        for row in rows:
            self._note_latest(row)

    def _note_latest(self, row: tuple) -> None:
        # Keep `metrics` on an active handle to the store's rule: highest step, then newest timestamp.
        _, key, value, step, ts = row
        seen = self._latest.get(key)
        if seen is None or (step, ts) >= seen:
            self._latest[key] = (step, ts)
            self._record["metrics"][key] = value

    def log_artifact(self, local_path: str | os.PathLike, artifact_path: str | None = None) -> str:
        """Store a file or a folder under `artifact_path/<name>`; return its artifact path."""
        from mloop.artifacts import get_blob_store

        path = Path(local_path)
        if not path.exists():
            raise InvalidInput(f"cannot log artifact: {path} does not exist")
        dest = _join(artifact_path, path.name)
        blobs = get_blob_store()
        digest = blobs.put(path)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
        RunArtifactRepo(self._store).add(self.id, dest, digest, size, path.is_dir())
        return dest

    def log_artifacts(self, local_dir: str | os.PathLike, artifact_path: str | None = None) -> list[str]:
        """Store each entry of a folder under `artifact_path/`."""
        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidInput(f"cannot log artifacts: {folder} is not a folder")
        return [self.log_artifact(p, artifact_path) for p in sorted(folder.iterdir())]

    def log_bytes(self, data: bytes, artifact_path: str) -> str:
        from mloop.artifacts import get_blob_store

        dest = _join(None, artifact_path)
        digest = get_blob_store().put_bytes(data)
        RunArtifactRepo(self._store).add(self.id, dest, digest, len(data), False)
        return dest

    def log_text(self, text: str, artifact_path: str) -> str:
        return self.log_bytes(text.encode("utf-8"), artifact_path)

    def log_dict(self, data: dict, artifact_path: str) -> str:
        """A dict as JSON, or YAML when the path ends in .yaml/.yml."""
        if artifact_path.endswith((".yaml", ".yml")):
            import yaml

            return self.log_text(yaml.safe_dump(data, sort_keys=False), artifact_path)
        return self.log_text(json.dumps(data, indent=2, default=str), artifact_path)

    def log_figure(self, figure: Any, artifact_path: str) -> str:
        """A matplotlib figure, saved in the format the path's suffix names (png by default)."""
        buf = io.BytesIO()
        fmt = PurePosixPath(artifact_path).suffix.lstrip(".") or "png"
        figure.savefig(buf, format=fmt, bbox_inches="tight")
        return self.log_bytes(buf.getvalue(), artifact_path)

    def use_dataset(self, uri: str) -> Any:
        """Record that this run read a dataset version (an `input` lineage edge); returns the version."""
        from mloop import data  # lazy: data sits above tracking (DESIGN.md's named exception)

        return data.use(uri, run=self)

    def log_model(self, model: Any, name: str, **kwargs: Any) -> Any:
        """Save a model with this run (see `mloop.models.log_model`); returns the ModelVersion or ModelInfo."""
        from mloop import registry  # lazy: registry sits above tracking (DESIGN.md's named exception)

        return registry.log_model(model, name=name, run=self, **kwargs)

    # -- lifecycle --------------------------------------------------------------------------
    def end(self, status: str = "FINISHED", error: str | None = None) -> None:
        """Flush this run's metrics, then mark it ended (FINISHED, FAILED or KILLED)."""
        from mloop.tracking import fluent

        fluent._end(self, status, error)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if not self._owner or not self._active:  # already ended inside the block: keep that status
            return
        self.end(*exit_status(exc_type, exc, tb))


def exit_status(exc_type, exc, tb) -> tuple[str, str | None]:  # noqa: ANN001
    """How a run ends after an exception (or none): FINISHED, KILLED on Ctrl-C, else FAILED with
    the traceback (its last 20,000 characters) as the error."""
    if exc_type is None:
        return "FINISHED", None
    if issubclass(exc_type, KeyboardInterrupt):
        return "KILLED", "KeyboardInterrupt"
    return "FAILED", "".join(traceback.format_exception(exc_type, exc, tb))[-20000:]


def _join(prefix: str | None, name: str) -> str:
    from mloop.artifacts.manifest import check_relative

    path = f"{prefix.strip('/')}/{name}" if prefix else name
    return check_relative(str(PurePosixPath(path)))
