"""The one engine every input runs through: DuckDB over an arrow table, a parquet or a csv file.

pandas and polars frames become arrow tables (zero-copy where the types allow); parquet and csv
paths are scanned by DuckDB without loading them whole (aggregates stream, uniqueness is an exact
GROUP BY that spills to disk). One aggregate query answers every counting expectation in a single
pass; examples of failing rows are fetched only for expectations that failed.
"""

from __future__ import annotations

import glob as _glob
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput
from mloop.validation import expectations as E

if TYPE_CHECKING:
    import pyarrow as pa

ROW = "__mloop_row"
EXAMPLES = 10
BATCH_ROWS = 65_536


def q(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    """A SQL literal for a Python scalar."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "'nan'::DOUBLE"
        if math.isinf(value):
            return "'inf'::DOUBLE" if value > 0 else "'-inf'::DOUBLE"
        return repr(value)
    if hasattr(value, "isoformat"):
        return "'" + value.isoformat() + "'"
    return "'" + str(value).replace("'", "''") + "'"


def normalise_dtype(arrow_type: Any) -> str:
    """A backend-independent type name: string kinds and dictionaries of strings are `string`,
    timestamp units are dropped (`timestamp[tz=UTC]`), other arrow names are kept."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or str(t) in ("string_view", "utf8_view"):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or str(t) == "binary_view":
        return "binary"
    if pa.types.is_timestamp(t):
        return f"timestamp[tz={_tz(t.tz)}]" if t.tz else "timestamp"
    if pa.types.is_boolean(t):
        return "bool"
    return str(t)


def _tz(name: str) -> str:
    return "UTC" if name in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "GMT", "Etc/GMT", "Z", "+00:00", "Zulu") else name


def dtype_family(arrow_type: Any) -> str:
    import pyarrow as pa

    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_boolean(t):
        return "boolean"
    if normalise_dtype(t) == "string":
        return "string"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    return "other"


def dtype_matches(expected: str, arrow_type: Any) -> bool:
    family = dtype_family(arrow_type)
    if expected == "numeric":
        return family in ("integer", "float")
    if expected in E.DTYPE_FAMILIES:
        return family == expected
    aliases = {"large_string": "string", "utf8": "string", "large_utf8": "string", "str": "string",
               "category": "string", "boolean": "bool", "float64": "double", "float32": "float"}
    want = aliases.get(expected, expected)
    if want.startswith("timestamp["):  # timestamp[ns, tz=UTC] -> timestamp[tz=UTC]
        tz = [p.split("=", 1)[1].rstrip("]") for p in want[10:].split(",") if "tz=" in p]
        want = f"timestamp[tz={_tz(tz[0].strip())}]" if tz else "timestamp"
    return normalise_dtype(arrow_type) == want


# -- sources --------------------------------------------------------------------------------------

class Source:
    """A table to check. In-memory data keeps its arrow `table` (checked by numpy/pyarrow kernels);
    files are scanned by DuckDB. `rel` is the FROM clause for aggregates, `rel_rows` the same rows
    with a 0-based row index column `ROW`. For in-memory data the DuckDB side is opened on first use."""

    def __init__(self, *, schema: pa.Schema, label: str, con: Any = None, rel: str = "mloop_src",
                 rel_rows: str = "mloop_src", table: Any = None) -> None:
        self.schema, self.label, self.rel, self.rel_rows, self.table = schema, label, rel, rel_rows, table
        self._con = con

    @property
    def con(self) -> Any:
        if self._con is None:
            import numpy as np
            import pyarrow as pa

            self._con = _connect()
            with_row = self.table.append_column(ROW, pa.array(np.arange(self.table.num_rows, dtype="int64")))
            self._con.register("mloop_src", with_row)
        return self._con

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.schema if f.name != ROW]

    def type_of(self, column: str) -> Any:
        return self.schema.field(column).type

    def is_float(self, column: str) -> bool:
        import pyarrow as pa

        t = self.type_of(column)
        t = t.value_type if pa.types.is_dictionary(t) else t
        return pa.types.is_floating(t)

    def col(self, column: str) -> str:
        """The column as SQL; categoricals are compared as their values."""
        import pyarrow as pa

        if pa.types.is_dictionary(self.type_of(column)):
            return f"CAST({q(column)} AS VARCHAR)"
        return q(column)

    def isnull(self, column: str) -> str:
        if self.is_float(column):
            return f"({q(column)} IS NULL OR isnan({q(column)}))"
        return f"({q(column)} IS NULL)"

    def notnull(self, column: str) -> str:
        if self.is_float(column):  # NULL propagates through isnan, and a NULL filter is false
            return f"(NOT isnan({q(column)}))"
        return f"({q(column)} IS NOT NULL)"

    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[Any, Any]]:
        """(row indices as a numpy array, pandas frame) per batch of at most BATCH_ROWS rows."""
        import numpy as np

        if self.table is not None:
            table = self.table.select(columns) if columns else self.table
            for offset in range(0, table.num_rows, BATCH_ROWS):
                part = table.slice(offset, BATCH_ROWS)
                yield np.arange(offset, offset + part.num_rows), part.to_pandas()
            return
        cols = ", ".join(q(c) for c in (columns or self.names))
        reader = self.con.sql(f"SELECT {q(ROW)}, {cols} FROM {self.rel_rows}").to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            frame = batch.to_pandas()
            rows = frame.pop(ROW).to_numpy()
            if len(rows):
                yield rows, frame


def open_source(data: Any) -> Source:
    """Wrap pandas/polars/pyarrow data or a parquet/csv path as a DuckDB-scannable Source."""
    if isinstance(data, str | Path):
        return _path_source(_connect(), data)
    if getattr(data, "format", None) in ("parquet", "csv") and hasattr(data, "uri") and hasattr(data, "path"):
        source = _path_source(_connect(), data.path)  # a DatasetVersion: stream its files
        source.label = data.uri
        return source
    table = to_arrow(data)
    if ROW in table.column_names:
        raise InvalidInput(f"column name {ROW!r} is reserved")
    if len(set(table.column_names)) != len(table.column_names):
        raise InvalidInput(f"the table has duplicate column names: {table.column_names}")
    return Source(schema=table.schema, label=f"{type(data).__module__.split('.')[0]} table", table=table)


def _connect() -> Any:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error:  # pragma: no cover - ICU absent
        pass
    return con


def to_arrow(data: Any) -> pa.Table:
    """pandas, polars, pyarrow (Table, RecordBatch, Dataset) or a DatasetVersion -> pyarrow.Table."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return _pandas_to_arrow(data)
    if module == "polars":
        return data.to_arrow()
    if hasattr(data, "to_table") and module == "pyarrow":  # a pyarrow dataset
        return data.to_table()
    if hasattr(data, "to_arrow"):  # a DatasetVersion
        return data.to_arrow()
    raise InvalidInput(
        f"cannot validate a {type(data).__name__}; pass a pandas, polars or pyarrow table or a parquet/csv path")


def _pandas_to_arrow(frame: Any) -> pa.Table:
    """pandas -> arrow without copying numeric columns: NaN stays NaN (mloop counts it as null
    anyway), so no null bitmap has to be built; other dtypes convert as `pa.Table.from_pandas`."""
    import numpy as np
    import pyarrow as pa

    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        raise InvalidInput(f"the frame has duplicate column names: {names}")
    arrays = []
    for i, name in enumerate(names):
        col = frame.iloc[:, i]
        try:
            if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf":
                arrays.append(pa.array(col.to_numpy(), from_pandas=False))
            else:
                arrays.append(pa.array(col, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(f"cannot read column {name!r} of the frame: {exc}") from None
    return pa.Table.from_arrays(arrays, names=names)


def _files(path: str | Path) -> tuple[list[str], str]:
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(_glob.glob(text, recursive=True))
    elif Path(text).is_dir():
        files = sorted(str(p) for p in Path(text).rglob("*") if p.suffix in (".parquet", ".pq", ".csv"))
    else:
        if not Path(text).exists():
            raise InvalidInput(f"cannot read {text!r}: no such file")
        files = [text]
    if not files:
        raise InvalidInput(f"cannot read {text!r}: no parquet or csv files there")
    kinds = {"csv" if f.endswith((".csv", ".csv.gz")) else "parquet" for f in files}
    if len(kinds) > 1:
        raise InvalidInput(f"{text!r} mixes csv and parquet files")
    return files, kinds.pop()


def _path_source(con: Any, path: str | Path) -> Source:
    import duckdb
    import pyarrow as pa

    files, kind = _files(path)
    listed = "[" + ", ".join(lit(f) for f in files) + "]"
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            parts, offset = [], 0
            for f in files:
                parts.append(f"SELECT * EXCLUDE (file_row_number), file_row_number + {offset} AS {q(ROW)} "
                             f"FROM read_parquet({lit(f)}, file_row_number = true)")
                offset += pq.ParquetFile(f).metadata.num_rows
            con.execute(f"CREATE TEMP VIEW mloop_src AS SELECT * FROM read_parquet({listed})")
            con.execute("CREATE TEMP VIEW mloop_rows AS " + " UNION ALL ".join(parts))
        else:
            con.execute(f"CREATE TEMP VIEW mloop_src AS SELECT * FROM read_csv({listed}, auto_detect = true)")
            con.execute(f"CREATE TEMP VIEW mloop_rows AS SELECT *, row_number() OVER () - 1 AS {q(ROW)} "
                        "FROM mloop_src")
        schema = con.sql("SELECT * FROM mloop_src LIMIT 0").to_arrow_table().schema
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        raise InvalidInput(f"cannot read {str(path)!r}: {str(exc).splitlines()[0]}") from None
    if ROW in schema.names:
        raise InvalidInput(f"column name {ROW!r} is reserved")
    return Source(con=con, rel="mloop_src", rel_rows="mloop_rows", schema=schema, label=str(path))
