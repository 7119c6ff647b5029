"""Batch scoring: parquet/CSV (a file or a folder of parquet files) in, one parquet file out,
streamed record batch by record batch so memory stays bounded whatever the input size.

Each batch costs one model call: classifiers' labels are the argmax of their probabilities.
The output has the `keep` columns, `prediction` and, for classifiers, `proba_<class>`; it is
written to a temporary file and renamed into place when complete.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from mloop.registry.model import Model


def _open(src: Path, columns: list[str] | None, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int | None, Any]:
    import pyarrow.parquet as pq

    if src.is_dir():
        files = sorted(p for p in src.rglob("*.parquet") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise InvalidInput(f"{src} holds no .parquet files")
        opened = [pq.ParquetFile(f) for f in files]
        for f, pf in zip(files, opened, strict=True):
            _check_columns(pf.schema_arrow.names, columns, f)
        total = sum(pf.metadata.num_rows for pf in opened)
        return (b for pf in opened for b in _row_groups(pf, columns, batch_rows)), total, opened[0].schema_arrow
    suffix = src.suffix.lower()
    if suffix in (".csv", ".tsv") or src.name.endswith((".csv.gz", ".tsv.gz")):
        import pyarrow.csv as pcsv

        parse = pcsv.ParseOptions(delimiter="\t" if ".tsv" in src.name else ",")
        convert = pcsv.ConvertOptions(include_columns=columns) if columns else None
        import pyarrow as pa

        try:
            reader = pcsv.open_csv(src, read_options=pcsv.ReadOptions(block_size=1 << 22), parse_options=parse,
                                   convert_options=convert)
        except (pa.ArrowInvalid, KeyError) as exc:
            raise InvalidInput(f"cannot read {src} as CSV with columns {columns}: {exc}") from exc
        return _rebatch(reader, batch_rows), None, reader.schema
    pf = pq.ParquetFile(src)
    names = pf.schema_arrow.names
    _check_columns(names, columns, src)
    return _row_groups(pf, columns, batch_rows), pf.metadata.num_rows, pf.schema_arrow


def _row_groups(pf: Any, columns: list[str] | None, rows: int) -> Iterator[pa.RecordBatch]:
    # One row group at a time: ParquetFile.iter_batches keeps decoded buffers alive across the whole
    # file (memory grows with the input), while a row group read is freed once its batches are done.
    for i in range(pf.num_row_groups):
        table = pf.read_row_group(i, columns=columns)
        yield from table.to_batches(max_chunksize=rows)
        del table


def _rebatch(reader: Any, rows: int) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        for start in range(0, batch.num_rows, rows):
            yield batch.slice(start, rows)


def _exact(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly `rows` rows (the last may be shorter), joining the tails of row groups, so
    each model call sees a full batch whatever the file's row-group size."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    have = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - have, batch.num_rows)
            pending.append(batch.slice(0, take))
            have += take
            batch = batch.slice(take)
            if have == rows:
                yield pa.Table.from_batches(pending)
                pending, have = [], 0
    if have:
        yield pa.Table.from_batches(pending)


def _check_columns(names: list[str], columns: list[str] | None, src: Path) -> None:
    missing = [c for c in columns or [] if c not in names]
    if missing:
        raise InvalidInput(f"{src} lacks column(s) {missing} (columns: {names[:30]})")


def predict_batch(model: Model, src: str | os.PathLike, dst: str | os.PathLike, *, batch_rows: int = 65_536,
                  keep: list[str] | str | None = None, progress: bool = False) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, got {batch_rows}")
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise NotFound(f"no such input: {src}")
    keep_cols = [k.strip() for k in keep.split(",")] if isinstance(keep, str) else list(keep or [])
    names = model.signature.names
    columns = list(dict.fromkeys([*names, *keep_cols])) if names else None
    batches, total, schema = _open(src, columns, batch_rows)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    rows = 0
    writer = None
    bar = _progress(progress, total)
    try:
        for batch in _exact(batches, batch_rows):
            table = _score_batch(model, batch, names, keep_cols)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += batch.num_rows
            if bar is not None:
                bar[0].update(bar[1], advance=batch.num_rows)
        if writer is None:  # empty input: an empty file with the output schema
            empty = pa.RecordBatch.from_pylist([], schema=pa.schema([schema.field(n) for n in (columns or schema.names)]))
            table = _score_batch(model, empty, names, keep_cols)
            writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        writer.close()
        writer = None
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar[0].stop()
        if tmp.exists():
            tmp.unlink()
    return {"rows": rows, "seconds": time.perf_counter() - started, "output": str(dst)}


def _score_batch(model: Model, batch: pa.Table | pa.RecordBatch, names: list[str], keep: list[str]) -> pa.Table:
    import pyarrow as pa

    features = batch.select(names) if names else batch
    X = model.prepare(features.to_pandas())
    labels, proba = model.score(X)
    arrays = [batch.column(k) for k in keep]
    fields = list(keep)
    arrays.append(pa.array(labels if len(labels) else [], type=_label_type(model, labels)))
    fields.append("prediction")
    if proba is not None:
        for i, col in enumerate(model.proba_columns):
            arrays.append(pa.array(proba[:, i], type=pa.float64()))
            fields.append(col)
    return pa.Table.from_arrays(arrays, names=fields)


def _label_type(model: Model, labels: Any) -> pa.DataType | None:
    import pyarrow as pa

    if model.task != "classification":
        return pa.float64()
    classes = model.classes or []
    kinds = {type(c) for c in classes}
    if kinds and kinds <= {bool}:
        return pa.bool_()
    if kinds and kinds <= {int}:
        return pa.int64()
    if kinds and kinds <= {str}:
        return pa.string()
    return None


def _progress(enabled: bool, total: int | None) -> tuple[Any, Any] | None:
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task("scoring", total=total)
    bar.start()
    return bar, task
