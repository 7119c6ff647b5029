"""The records the registry hands out: `ModelVersion` (a registered version) and `ModelInfo` (a
model logged with a run, registered or not)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mloop.registry.signature import Signature


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: `name`, `version`, `run_id`, `aliases`, `signature`, `flavor`, `digest`,
    `created_at` (ms), `datasets` ("name/N"), `metrics`, `tags`, `manifest`, `validation_data` (digest)."""

    name: str
    version: int
    run_id: str | None
    digest: str
    flavor: str
    task: str | None
    signature: Signature
    manifest: dict
    metrics: dict
    datasets: list
    validation_data: str | None
    description: str | None
    tags: dict
    aliases: list
    created_at: int
    updated_at: int
    user: str
    deleted: bool = False

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def classes(self) -> list | None:
        return self.manifest.get("classes")

    @classmethod
    def from_row(cls, row: dict) -> ModelVersion:
        return cls(
            name=row["name"], version=int(row["version"]), run_id=row["run_id"], digest=row["digest"],
            flavor=row["flavor"], task=row["task"], signature=Signature.from_dict(row["signature"]),
            manifest=row["manifest"], metrics=row["metrics"], datasets=row["datasets"],
            validation_data=row["validation_data"], description=row["description"], tags=row.get("tags", {}),
            aliases=row.get("aliases", []), created_at=row["created_ms"], updated_at=row["updated_ms"],
            user=row["user"], deleted=row["lifecycle_stage"] == "deleted",
        )

    def validation_frame(self) -> Any:
        """The stored validation sample (features and target) as a pandas DataFrame, or None."""
        if not self.validation_data:
            return None
        import io

        import pandas as pd

        from mloop.artifacts import get_blob_store

        return pd.read_parquet(io.BytesIO(get_blob_store().get(self.validation_data)))

    def load(self, *, trust: bool = False) -> Any:
        """The loaded `Model` of this version."""
        from mloop.registry.model import load

        return load(self.uri, trust=trust)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "version": self.version, "uri": self.uri, "run_id": self.run_id,
            "aliases": list(self.aliases), "flavor": self.flavor, "task": self.task, "digest": self.digest,
            "created_at": self.created_at, "user": self.user, "datasets": list(self.datasets),
            "metrics": dict(self.metrics), "tags": dict(self.tags), "description": self.description,
            "validation_data": self.validation_data, "signature": self.signature.to_dict(),
            "classes": self.classes, "deleted": self.deleted,
        }

    def __repr__(self) -> str:
        return (f"ModelVersion(name={self.name!r}, version={self.version}, flavor={self.flavor!r}, "
                f"aliases={self.aliases}, run_id={self.run_id!r})")

    def _repr_html_(self) -> str:
        from html import escape

        rows = [("uri", self.uri), ("aliases", ", ".join(self.aliases)), ("flavor", self.flavor),
                ("task", self.task), ("run", self.run_id), ("digest", self.digest),
                ("inputs", ", ".join(f"{c['name']}:{c['dtype']}" for c in self.signature.inputs)),
                *[(f"metrics.{k}", v) for k, v in self.metrics.items()], *[(f"tags.{k}", v) for k, v in self.tags.items()]]
        return "<table>" + "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                                   for k, v in rows) + "</table>"


@dataclass(frozen=True)
class ModelInfo:
    """A model logged with a run: `uri` ("runs:/<run_id>/<name>"), `digest`, `manifest`."""

    uri: str
    run_id: str
    name: str
    digest: str
    manifest: dict = field(repr=False)

    @property
    def flavor(self) -> str:
        return self.manifest["flavor"]

    @property
    def signature(self) -> Signature:
        return Signature.from_dict(self.manifest.get("signature"))

    def load(self, *, trust: bool = False) -> Any:
        from mloop.registry.model import load

        return load(self.uri, trust=trust)
