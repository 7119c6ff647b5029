"""Typed materialisers: how a step output becomes a blob in the artifact store, and back.

pandas / polars / pyarrow tables are stored as parquet, numpy arrays as .npy, JSON-exact values
(dicts with string keys, lists, strings, numbers, booleans, None) as JSON, models as a folder written
by the registry's flavors (scikit-learn through skops with its recorded trusted types, XGBoost,
LightGBM, ONNX in their own formats), and anything else with cloudpickle — which is
loaded only when trusted (the registry's rule: pickles run code, so they are never loaded from a
source nobody vouched for; a pipeline trusts blobs whose digests its own step records hold).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

from mloop.errors import InvalidInput

KINDS = ("json", "pandas", "polars", "arrow", "numpy", "model", "pickle")


def kind_of(value: Any) -> str:
    """The materialiser that stores `value`."""
    module = type(value).__module__
    name = type(value).__name__
    if module.startswith("pandas") and name == "DataFrame":
        return "pandas"
    if module.startswith("polars") and name == "DataFrame":
        return "polars"
    if module.startswith("pyarrow") and name == "Table":
        return "arrow"
    if module == "numpy" and name == "ndarray" and value.dtype != object:
        return "numpy"
    if _json_exact(value):
        return "json"
    if _is_model(value):
        return "model"
    return "pickle"


def _json_exact(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or isinstance(value, bool | str):
        return True
    if type(value) is int:
        return True
    if type(value) is float:
        return not (math.isnan(value) or math.isinf(value))
    if type(value) is list:
        return all(_json_exact(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v, depth + 1) for k, v in value.items())
    return False


_MODEL_FLAVORS = ("xgboost", "lightgbm", "onnx", "sklearn")
MODEL_META = "mloop-step-model.json"


def _flavor_of(value: Any) -> Any:
    """The registry flavor that saves `value` (not pyfunc: that one is a pickle), or None."""
    if not (hasattr(value, "predict") or hasattr(value, "transform") or type(value).__name__ == "ModelProto"):
        return None
    try:
        from mloop.registry import flavors
    except ImportError:  # the registry is not part of this build
        return None
    for name in _MODEL_FLAVORS:
        try:
            module = flavors.get(name)
            if module.detect(value):
                return module
        except ImportError:  # that flavor's library is not installed
            continue
    return None


def _is_model(value: Any) -> bool:
    return _flavor_of(value) is not None


def dumps(value: Any) -> tuple[str, bytes]:
    """`(kind, bytes)` for a value."""
    kind = kind_of(value)
    if kind == "json":
        return kind, json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if kind in ("pandas", "arrow", "polars"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        if kind == "polars":
            value.write_parquet(buf)
        else:
            table = value if kind == "arrow" else pa.Table.from_pandas(value, preserve_index=None)
            pq.write_table(table, buf)
        return kind, buf.getvalue()
    if kind == "numpy":
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        return kind, buf.getvalue()
    import cloudpickle

    if kind == "model":
        kind = "pickle"  # save() stores models as folders; here (bytes only) they are pickled
    try:
        return kind, cloudpickle.dumps(value)
    except Exception as exc:  # noqa: BLE001
        raise InvalidInput(f"cannot store a {type(value).__qualname__} step output: {exc}") from exc


def loads(kind: str, data: bytes, *, trust: bool = False) -> Any:
    """A value back from `(kind, bytes)`; a pickle needs `trust=True`."""
    if kind == "json":
        return json.loads(data)
    if kind in ("pandas", "arrow", "polars"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        if kind == "arrow":
            return table
        if kind == "polars":
            import polars as pl

            return pl.from_arrow(table)
        return table.to_pandas()
    if kind == "numpy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if kind == "pickle":
        if not trust:
            raise InvalidInput(
                "this step output is a pickle, which runs code when loaded; load it with trust=True only if "
                "you trust whoever wrote to this artifact store"
            )
        import cloudpickle

        return cloudpickle.loads(data)
    raise InvalidInput(f"unknown materialiser {kind!r}; known: {', '.join(KINDS)}")


INLINE_MAX = 1024  # JSON outputs up to this many bytes ride in the step record itself


def save(value: Any) -> dict:
    """Store a value; returns `{"kind", "digest", "size"}` (plus `"inline"` for a small JSON value,
    which is kept in the metadata store's records instead of a blob of its own)."""
    from mloop.artifacts import get_blob_store
    from mloop.artifacts.hashing import digest_of_bytes

    flavor = _flavor_of(value) if kind_of(value) == "model" else None
    if flavor is not None:
        return _save_model(value, flavor)
    kind, data = dumps(value)
    if kind == "json" and len(data) <= INLINE_MAX:
        return {"kind": kind, "digest": digest_of_bytes(data), "size": len(data), "inline": json.loads(data)}
    digest = get_blob_store().put_bytes(data)
    return {"kind": kind, "digest": digest, "size": len(data)}


def load(entry: dict, *, trust: bool = False) -> Any:
    """Load a stored output (`{"kind", "digest"}`), verified against its digest."""
    from mloop.artifacts import get_blob_store

    if "inline" in entry:
        return entry["inline"]
    if entry["kind"] == "model":
        return _load_model(entry, trust=trust)
    return loads(entry["kind"], get_blob_store().get(entry["digest"]), trust=trust)


def _save_model(value: Any, flavor: Any) -> dict:
    """A model folder written by the registry's flavor (skops for scikit-learn, native formats for
    XGBoost / LightGBM / ONNX), stored as a directory blob."""
    import tempfile
    from pathlib import Path

    from mloop.artifacts import get_blob_store

    with tempfile.TemporaryDirectory(prefix="mloop-step-model-") as tmp:
        folder = Path(tmp)
        options = flavor.save(value, folder, trust=False)
        (folder / MODEL_META).write_text(json.dumps({"flavor": flavor.NAME, "flavor_options": options},
                                                    sort_keys=True, default=str))
        digest = get_blob_store().put_dir(folder)
        size = sum(p.stat().st_size for p in folder.iterdir())
    return {"kind": "model", "digest": digest, "size": size, "flavor": flavor.NAME}


def _load_model(entry: dict, *, trust: bool) -> Any:
    from mloop.registry import flavors
    from mloop.registry.model import ModelFiles

    files = ModelFiles(entry["digest"], f"step output {entry['digest'][:19]}")
    meta = json.loads(files.read(MODEL_META))
    predictor = flavors.get(meta["flavor"]).load(files, meta, trust=trust)
    return getattr(predictor, "native", predictor)


def is_blob(entry: dict) -> bool:
    """True when the output lives in a blob of its own (not inline in the record)."""
    return "inline" not in entry


__all__ = ["KINDS", "dumps", "kind_of", "load", "loads", "save"]
