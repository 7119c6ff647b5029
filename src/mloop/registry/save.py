"""`log_model`: save a model as a directory blob with its manifest `mloop-model.yaml`, as an
artifact of a run, and optionally register it as the next version of a named model.

The blobs (model files, validation sample) are written before the rows that point at them; the
version row, its blob refs and the run -> version `produced` edge commit in one transaction.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput
from mloop.registry import flavors, requirements, uris
from mloop.registry.model import MANIFEST, from_native
from mloop.registry.records import ModelInfo, ModelVersion
from mloop.registry.signature import (
    Signature,
    check_reserved,
    datasets_room,
    infer,
    output_spec,
    read_table,
    to_pandas,
)

if TYPE_CHECKING:
    from mloop.tracking.run import Run

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
SAMPLE_ROWS = 100_000
EXAMPLE_ROWS = 5
VALIDATION_FILE = "validation.parquet"


def log_model(
    model: Any,
    name: str,
    *,
    run: Run | None = None,
    input_example: Any = None,
    register: bool = False,
    features: str | None = None,
    validation_data: Any = None,
    trust: bool = False,
    target: str | None = None,
    flavor: str | None = None,
    task: str | None = None,
    classes: list | None = None,
    tags: dict | None = None,
    description: str | None = None,
) -> ModelVersion | ModelInfo:
    """Save `model` with a run (the active one, or a new one); with `register=True` it also becomes
    the next version of the registered model `name` and a `ModelVersion` comes back.

    `validation_data` (a frame with the target column, or a dataset URI) is kept as a seeded sample
    of at most 100,000 rows and evaluated to fill the manifest's metrics.

    >>> mv = mloop.models.log_model(pipe, "churn", input_example=X.head(), register=True)  # doctest: +SKIP
    """
    from mloop.tracking import fluent

    uris.check_name(name)
    owned = None
    if run is None:
        run = fluent.active_run()
        if run is None:
            owned = run = fluent.start_run(name=f"log-model-{name}")
    try:
        info = _save(model, name, run, input_example, features, validation_data, trust, target, flavor, task, classes)
        if not register:
            return info
        return _register(info, name, run.id, tags=tags, description=description)
    finally:
        if owned is not None:
            owned.end()


def _save(model: Any, name: str, run: Run, input_example: Any, features: str | None, validation_data: Any,
          trust: bool, target: str | None, flavor: str | None, task: str | None, classes: list | None) -> ModelInfo:
    from mloop.artifacts import get_blob_store
    from mloop.store.tracking import RunArtifactRepo

    module = flavors.detect(model, flavor)
    found_task, found_classes = module.describe(model)
    task = task or found_task
    classes = classes if classes is not None else found_classes
    if task not in ("classification", "regression"):
        raise InvalidInput(f"task must be 'classification' or 'regression', got {task!r}")
    example = _example_frame(model, input_example)
    sig = infer(example) if example is not None else Signature()
    if not sig:
        log.warning("model %r has no input example: its inputs will not be checked at predict time", name)
    label_dtype = _label_dtype(classes)
    sig = Signature(inputs=sig.inputs, outputs=output_spec(task, classes, label_dtype))
    check_reserved(sig)

    blobs = get_blob_store()
    metrics: dict[str, float] = {k: v for k, v in run.metrics.items() if v == v}
    sample = None
    if validation_data is not None:
        sample, target = _validation_sample(validation_data, target, sig)
        from mloop.registry.evaluation import compute_metrics

        wrapped = from_native(model, signature=sig, flavor=module.NAME, task=task, classes=classes)
        metrics.update(compute_metrics(wrapped, sample, target))
    datasets = _run_datasets(run)
    libraries = requirements.versions(module.PACKAGES)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "flavor": module.NAME,
        "libraries": libraries,
        "python": _python_version(),
        "task": task,
        "classes": classes,
        "target": target,
        "signature": sig.to_dict(),
        "input_example": _records(example),
        "requirements": requirements.requirements(model, module.PACKAGES, known=libraries),
        "features": features,
        "metrics": metrics,
        "datasets": datasets,
        "validation_data": None,
        "run_id": run.id,
    }
    with tempfile.TemporaryDirectory(prefix="mloop-model-") as tmp:
        folder = Path(tmp)
        known = {}
        if sample is not None:  # inside the model folder, so the folder's manifest keeps it alive
            known[VALIDATION_FILE] = manifest["validation_data"] = _write_parquet(folder / VALIDATION_FILE, sample)
        options = module.save(model, folder, trust=trust)
        manifest["trusted_types"] = options.pop("trusted_types", [])  # skops: what load may trust, exactly
        manifest["flavor_options"] = options
        import yaml

        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        (folder / MANIFEST).write_text(yaml.dump(manifest, Dumper=dumper, sort_keys=False, allow_unicode=True))
        size = sum(p.stat().st_size for p in folder.iterdir())
        digest = blobs.put_dir(folder, known)
    if module.NAME == "sklearn":  # the object just saved as `digest`: warm the local load cache (load_cache)
        from mloop.registry import load_cache

        load_cache.put(digest, model, manifest)
    RunArtifactRepo(run.store).add(run.id, name, digest, size, True)
    return ModelInfo(uri=f"runs:/{run.id}/{name}", run_id=run.id, name=name, digest=digest, manifest=manifest)


def _register(info: ModelInfo, name: str, run_id: str | None, *, tags: dict | None, description: str | None
              ) -> ModelVersion:
    from mloop.store.db import get_store
    from mloop.store.registry import ModelRepo

    m = info.manifest
    row = {
        "name": name, "run_id": run_id, "digest": info.digest, "flavor": m["flavor"], "task": m.get("task"),
        "signature": m.get("signature") or {}, "manifest": m, "metrics": m.get("metrics") or {},
        "datasets": [d["id"] for d in m.get("datasets") or []], "validation_data": m.get("validation_data"),
        "description": description,
    }
    edges = [(("run", run_id), "produced")] if run_id else []
    created = ModelRepo(get_store()).create_version(
        row, tags={str(k): str(v) for k, v in (tags or {}).items()}, edges=edges,
        blobs=[info.digest, m.get("validation_data") or ""])
    return ModelVersion.from_row(created)


def register_logged(run_id: str, path: str, name: str, *, tags: dict | None = None,
                    description: str | None = None) -> ModelVersion:
    """Register the model a run logged under `path` as the next version of `name`."""
    from mloop.registry.model import ModelFiles, logged_digest, read_manifest

    digest = logged_digest(run_id, path)
    manifest = read_manifest(ModelFiles(digest, f"model runs:/{run_id}/{path}"))
    info = ModelInfo(uri=f"runs:/{run_id}/{path}", run_id=run_id, name=path, digest=digest, manifest=manifest)
    return _register(info, name, run_id, tags=tags, description=description)


def _example_frame(model: Any, example: Any) -> Any:
    if example is None:
        return None
    names = _feature_names(model)
    df = to_pandas(example, names)
    if not all(isinstance(c, str) for c in df.columns):  # a bare array: columns are named by position
        df.columns = [str(c) for c in df.columns]
    if names is not None and list(df.columns) != names and set(names) <= set(df.columns):
        # The signature is what the model was fitted on, in that order: an example that also carries
        # the target (or ids) must not make serving demand those columns.
        extra = [c for c in df.columns if c not in set(names)]
        if extra:
            log.warning("input_example has columns the model was not fitted on (%s); they are left out of the "
                        "signature", ", ".join(map(str, extra)))
        df = df[names]
    return df.head(EXAMPLE_ROWS).reset_index(drop=True)


def _feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else None


def _label_dtype(classes: list | None) -> str | None:
    if not classes:
        return None
    kinds = {type(c) for c in classes}
    if kinds <= {bool}:
        return "bool"
    if kinds <= {int}:
        return "int64"
    if kinds <= {int, float}:
        return "float64"
    if kinds <= {str}:
        return "string"
    return "object"


def _validation_sample(data: Any, target: str | None, sig: Signature) -> tuple[Any, str]:
    df = read_table(data)
    if target is None:
        others = [c for c in df.columns if c not in set(sig.names)] if sig else []
        if len(others) != 1:
            raise InvalidInput(f"cannot tell the target column of validation_data (candidates: {others or 'none'}); "
                               "pass target='<column>'")
        target = str(others[0])
    if target not in df.columns:
        raise InvalidInput(f"validation_data has no target column {target!r} (columns: {list(df.columns)[:30]})")
    if len(df) > SAMPLE_ROWS:
        df = df.sample(n=SAMPLE_ROWS, random_state=0).sort_index()
    return df.reset_index(drop=True), target


def _write_parquet(path: Path, df: Any) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mloop.artifacts.hashing import digest_of_file

    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return digest_of_file(path)


def _run_datasets(run: Run) -> list[dict]:
    from mloop.store.lineage import LineageRepo

    out = []
    for edge in LineageRepo(run.store).edges(("run", run.id), "in"):
        if edge.relation == "input" and edge.from_kind == "dataset_version":
            entry: dict[str, Any] = {"id": edge.from_id, "digest": None}
            datasets = datasets_room()
            if datasets is not None:
                try:
                    entry["digest"] = datasets.get(edge.from_id).digest
                except Exception:  # noqa: BLE001 - the version may be gone
                    pass
            out.append(entry)
    return out


def _records(df: Any) -> list[dict] | None:
    if df is None:
        return None
    import json

    return json.loads(df.to_json(orient="records", date_format="iso"))


def _python_version() -> str:
    import platform

    return platform.python_version()
