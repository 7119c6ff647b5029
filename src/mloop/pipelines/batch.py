"""Batch scoring spread over Ray workers (`mloop predict URI ... --executor ray`): the input's row
groups are mapped over Ray Data actors that each load the model once, and the scored batches come
back in input order into one parquet file — the same rows and columns as in-process scoring.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, NotFound


class _Scorer:
    """A Ray Data actor: loads the model once, then scores each batch it is handed."""

    def __init__(self, uri: str, settings: dict, names: list[str], keep: list[str], trust: bool) -> None:
        from mloop.pipelines.execute import _ensure_settings

        _ensure_settings(settings)
        import mloop

        self.model = mloop.models.load(uri, trust=trust)
        self.names, self.keep = names, keep

    def __call__(self, table: Any) -> Any:
        import pyarrow as pa

        from mloop.registry.batch import _score_batch

        parts = [_score_batch(self.model, rb, self.names, self.keep) for rb in table.to_batches() if rb.num_rows]
        return pa.concat_tables(parts) if parts else pa.table({})


def predict_distributed(uri: str, src: str | os.PathLike, dst: str | os.PathLike, *, executor: str = "ray",
                        batch_rows: int = 65_536, keep: list[str] | str | None = None, trust: bool = False,
                        workers: int | None = None) -> dict:
    """Score `src` (parquet file or folder, or CSV) with the model at `uri` on Ray; write `dst`."""
    import pyarrow.parquet as pq

    import mloop
    from mloop.config import get_settings
    from mloop.pipelines.executors import get_executor

    ex = get_executor(executor)
    if not hasattr(ex, "start"):
        raise InvalidInput(f"--executor {executor!r} does not spread work; use ray or ray://host:port "
                           "(or leave it out to score in this process)")
    settings = get_settings()
    ex.check_stores(settings)
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise NotFound(f"no such input: {src}")
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}")
    model = mloop.models.load(uri, trust=trust)  # checks the URI and the trust rule before any worker starts
    mv = model.version
    pinned = f"models:/{mv.name}/{mv.version}" if mv is not None else uri
    keep_cols = [k.strip() for k in keep.split(",")] if isinstance(keep, str) else list(keep or [])
    names = model.signature.names if model.signature else []
    ex.start()
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    columns = list(dict.fromkeys([*names, *keep_cols])) if names else None
    if src.is_dir() or src.suffix.lower() == ".parquet":
        ds = ray.data.read_parquet(str(src.resolve()))
        if columns:
            ds = ds.select_columns(columns)
    elif src.suffix.lower() in (".csv", ".tsv") or src.name.endswith((".csv.gz", ".tsv.gz")):
        ds = ray.data.read_csv(str(src.resolve()))
    else:
        raise InvalidInput(f"cannot score {src}: use a parquet file or folder, or a CSV file")
    sets = {"tracking_uri": settings.tracking_uri, "artifact_uri": settings.artifact_uri, "home": str(settings.home)}
    # leave a CPU for the read tasks that feed the actors (all CPUs held by actors would deadlock)
    n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) - 1)
    scored = ds.map_batches(_Scorer, fn_constructor_args=(pinned, sets, names, keep_cols, trust),
                            batch_size=batch_rows, batch_format="pyarrow", concurrency=n, num_cpus=1)
    started = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    writer = None
    rows = 0
    try:
        for table in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
            if table.num_rows == 0:
                continue
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:
            raise InvalidInput(f"{src} has no rows to score")
        writer.close()
        writer = None
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return {"rows": rows, "seconds": time.perf_counter() - started, "output": str(dst), "workers": n,
            "model": pinned}


__all__ = ["predict_distributed"]
