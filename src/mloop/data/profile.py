"""Dataset profiles (DESIGN.md, "Dataset profile"): schema, row count, per-column statistics and a
seeded sample, computed vectorised in DuckDB over Arrow data or straight over parquet/csv files
(streamed, so files larger than memory are fine).

    >>> import pandas as pd, mloop
    >>> p = mloop.data.profile(pd.DataFrame({"x": [1, 2, 3]}))  # doctest: +SKIP
    >>> p.columns["x"]["mean"]  # doctest: +SKIP
    2.0
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = 1
SAMPLE_ROWS = 100_000
SAMPLE_SEED = 0
MAX_VALUE_COUNTS = 1000
TOP_VALUES = 20
QUANTILES = ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99")
_EDGES = tuple(i / 10 for i in range(11))
# Above this many rows quantiles are DuckDB's approximate ones (exact ones hold a column in memory).
EXACT_QUANTILES_UP_TO = 50_000_000
TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


class Profile:
    """A dataset profile: `.rows`, `.schema`, `.columns` (name -> statistics), `.sample()`, `.to_dict()`.

    `to_dict()` is the shape in CONTRACTS.md; `Profile.from_dict(d)` reads one back (a stored
    version's profile loads its sample from the blob named in `d["sample"]["digest"]`).
    """

    def __init__(self, data: dict, sample: pa.Table | None = None,
                 sample_loader: Callable[[], pa.Table] | None = None) -> None:
        self._data = data
        self._sample = sample
        self._sample_loader = sample_loader

    @classmethod
    def from_dict(cls, data: dict, sample_loader: Callable[[], pa.Table] | None = None) -> Profile:
        return cls(copy.deepcopy(data), sample_loader=sample_loader)

    @property
    def rows(self) -> int:
        return self._data["rows"]

    @property
    def schema(self) -> list[dict]:
        return self._data["schema"]

    @property
    def columns(self) -> dict[str, dict]:
        return self._data["columns"]

    def to_dict(self) -> dict:
        """The profile record (a deep copy, JSON-serialisable)."""
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        return json.dumps(self._data, sort_keys=False)

    def sample_table(self) -> pa.Table:
        """The seeded sample as an Arrow table."""
        if self._sample is None:
            if self._sample_loader is None:
                raise NotFound("this profile carries no sample (it was stored without one)")
            self._sample = self._sample_loader()
        return self._sample

    def sample(self) -> pd.DataFrame:
        """The seeded sample (at most 100,000 rows) as a pandas DataFrame."""
        return self.sample_table().to_pandas()

    def __repr__(self) -> str:
        return f"Profile(rows={self.rows}, columns={list(self.columns)})"

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{h}</th>" for h in ("column", "dtype", "kind", "nulls", "distinct", "unique",
                                                  "min", "max", "mean", "std"))
        body = []
        for name, col in self.columns.items():
            cells = [name, col["dtype"], col["kind"], col["nulls"], col["distinct"], col["unique"],
                     col["min"], col["max"], col["mean"], col["std"]]
            body.append("<tr>" + "".join(f"<td>{html.escape(_short(v))}</td>" for v in cells) + "</tr>")
        return (f"<p>{self.rows} rows, {len(self.columns)} columns</p>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _short(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# -- inputs ---------------------------------------------------------------------------------

def as_arrow(table: Any) -> pa.Table:
    """pandas, polars or pyarrow data as an Arrow table (InvalidInput for anything else)."""
    import pyarrow as pa

    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    module = type(table).__module__.split(".", 1)[0]
    if module == "polars":
        return table.to_arrow()
    if module == "pandas":
        import pandas as pd

        if isinstance(table, pd.Series):
            table = table.to_frame()
        names = [str(c) for c in table.columns]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InvalidInput(f"table has duplicate column names {dupes}; rename them first")
        frame = table.set_axis(names, axis=1) if names != list(table.columns) else table
        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(f"cannot convert the DataFrame to Arrow: {exc}") from exc
    raise InvalidInput(
        f"expected a pandas, polars or pyarrow table or a parquet/csv path, got {type(table).__name__}"
    )


def table_files(path: Path) -> list[Path]:
    """The parquet/csv files making up a table path (a file, or a folder of them); [] if not tabular."""
    if path.is_file():
        return [path] if path.suffix.lower() in TABLE_SUFFIXES else []
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if files and all(p.suffix.lower() in TABLE_SUFFIXES for p in files):
            kinds = {p.suffix.lower() == ".csv" for p in files}
            if len(kinds) == 1:
                return files
    return []


class _Source:
    """Where DuckDB reads the data from: a registered Arrow table or parquet/csv files."""

    def __init__(self, con, table: pa.Table | None = None, files: list[Path] | None = None) -> None:  # noqa: ANN001
        self.con = con
        self.table = table
        self.files = files or []
        if table is not None:
            con.register("__src", table)
            self.sql = "__src"
        else:
            paths = "[" + ", ".join(_literal(str(p)) for p in self.files) + "]"
            if self.files[0].suffix.lower() == ".csv":
                self.sql = f"read_csv({paths}, union_by_name = true)"
            else:
                self.sql = f"read_parquet({paths}, union_by_name = true)"

    def query(self, sql: str) -> list[tuple]:
        try:
            return self.con.execute(sql).fetchall()
        except Exception as exc:
            if type(exc).__module__.startswith("duckdb"):
                where = ", ".join(str(p) for p in self.files) or "the table"
                raise InvalidInput(f"cannot read {where}: {str(exc).splitlines()[0]}") from exc
            raise


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- profile --------------------------------------------------------------------------------

def profile(table: Any) -> Profile:
    """Profile a pandas/polars/pyarrow table, or a parquet/csv file or folder of them.

    Files are read by DuckDB in a streaming way; in-memory tables are queried in place (zero copy).
    """
    import duckdb

    con = duckdb.connect()
    try:
        if isinstance(table, str | os.PathLike):
            path = Path(table)
            if not path.exists():
                raise NotFound(f"no such file or folder: {path}")
            files = table_files(path)
            if not files:
                raise InvalidInput(f"{path} is not a parquet or csv file (or a folder of only one of them)")
            source = _Source(con, files=files)
            schema = _file_schema(source)
        else:
            arrow = as_arrow(table)
            source = _Source(con, table=arrow)
            schema = arrow.schema
        return _profile(source, schema)
    finally:
        con.close()


def _file_schema(source: _Source) -> pa.Schema:
    import pyarrow as pa

    if source.files[0].suffix.lower() == ".csv":
        try:
            rel = source.con.sql(f"SELECT * FROM {source.sql} LIMIT 0")
            return rel.to_arrow_table().schema
        except Exception as exc:
            raise InvalidInput(f"cannot read {source.files[0]} as csv: {str(exc).splitlines()[0]}") from exc
    import pyarrow.parquet as pq

    schemas = []
    for f in source.files:
        try:
            schemas.append(pq.read_schema(f))
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInput(f"{f} is not a readable parquet file: {exc}") from exc
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, TypeError):
        return schemas[0]


def kind_of(arrow_type: pa.DataType) -> str:
    """numeric | string | boolean | categorical | datetime | other, from an Arrow type."""
    import pyarrow.types as t

    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "numeric"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or getattr(t, "is_string_view", lambda _: False)(
        arrow_type
    ):
        return "string"
    if t.is_dictionary(arrow_type):
        return "categorical"
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return "datetime"
    return "other"


def _profile(source: _Source, schema: pa.Schema) -> Profile:
    import pyarrow.types as t

    names = list(schema.names)
    if len(set(names)) != len(names):
        raise InvalidInput(f"table has duplicate column names {sorted({n for n in names if names.count(n) > 1})}")
    kinds = {f.name: kind_of(f.type) for f in schema}
    # NaN counts as null: float columns are read through a NaN -> NULL expression.
    expr = {}
    for f in schema:
        col = _ident(f.name)
        if t.is_floating(f.type):
            expr[f.name] = f"(CASE WHEN isnan({col}) THEN NULL ELSE {col} END)"
        elif kinds[f.name] == "categorical":
            expr[f.name] = f"CAST({col} AS VARCHAR)"
        else:
            expr[f.name] = col

    aggs = ["count(*)"]
    for name in names:
        e, kind = expr[name], kinds[name]
        aggs += [f"count({e})", f"count(DISTINCT {e})" if kind != "other" else "NULL"]
        if kind == "numeric":
            aggs += [f"min({e})", f"max({e})", f"avg(CAST({e} AS DOUBLE))", f"stddev_samp(CAST({e} AS DOUBLE))"]
        elif kind in ("string", "datetime"):
            aggs += [f"min({e})", f"max({e})", "NULL", "NULL"]
        else:
            aggs += ["NULL", "NULL", "NULL", "NULL"]
    row = source.query(f"SELECT {', '.join(aggs)} FROM {source.sql}")[0]
    rows = int(row[0])

    columns: dict[str, dict] = {}
    for i, name in enumerate(names):
        non_null, distinct, lo, hi, mean, std = row[1 + 6 * i: 7 + 6 * i]
        nulls = rows - int(non_null)
        distinct = None if distinct is None else int(distinct)
        columns[name] = {
            "dtype": str(schema.field(name).type),
            "kind": kinds[name],
            "nulls": nulls,
            "distinct": distinct,
            "unique": distinct is not None and nulls == 0 and distinct == rows,
            "min": _jsonable(lo),
            "max": _jsonable(hi),
            "mean": _finite(mean),
            "std": _finite(std),
            "quantiles": None,
            "histogram": None,
            "value_counts": None,
            "high_cardinality": bool(distinct is not None and distinct > MAX_VALUE_COUNTS),
            "top_values": [],
        }
    _numeric_distributions(source, columns, expr, rows)
    _value_counts(source, columns, expr, rows)
    sample = _sample(source, rows)
    data = {
        "schema_version": SCHEMA_VERSION,
        "rows": rows,
        "schema": [{"name": f.name, "dtype": str(f.type)} for f in schema],
        "columns": columns,
        "sample": {"rows": sample.num_rows, "seed": SAMPLE_SEED, "digest": None},
    }
    return Profile(data, sample=sample)


def _numeric_distributions(source: _Source, columns: dict, expr: dict, rows: int) -> None:
    numeric = [n for n, c in columns.items() if c["kind"] == "numeric" and c["nulls"] < rows]
    if not numeric:
        return
    points = sorted({*(float(q) for q in QUANTILES), *_EDGES})
    fn = "quantile_cont" if rows <= EXACT_QUANTILES_UP_TO else "approx_quantile"
    plist = "[" + ", ".join(repr(p) for p in points) + "]"
    aggs = [f"{fn}(CAST({expr[n]} AS DOUBLE), {plist})" for n in numeric]
    values = source.query(f"SELECT {', '.join(aggs)} FROM {source.sql}")[0]
    edges_by_col = {}
    for name, qs in zip(numeric, values, strict=True):
        at = dict(zip(points, (float(v) for v in qs), strict=True))
        columns[name]["quantiles"] = {q: at[float(q)] for q in QUANTILES}
        edges = [at[p] for p in _EDGES]
        edges = [max(edges[: i + 1]) for i in range(len(edges))]  # approx quantiles may dip; keep monotone
        edges_by_col[name] = edges
    # Bin i holds e_i <= x < e_(i+1); the last bin also holds x == e_10 (numpy.histogram's rule).
    aggs = []
    for name in numeric:
        e, edges = f"CAST({expr[name]} AS DOUBLE)", edges_by_col[name]
        aggs += [f"count({e}) FILTER (WHERE {e} < {edge!r})" for edge in edges[1:10]]
        aggs.append(f"count({e})")
    counts = source.query(f"SELECT {', '.join(aggs)} FROM {source.sql}")[0]
    for j, name in enumerate(numeric):
        below = [0, *(int(c) for c in counts[10 * j: 10 * j + 9]), int(counts[10 * j + 9])]
        columns[name]["histogram"] = {
            "edges": edges_by_col[name],
            "counts": [below[i + 1] - below[i] for i in range(10)],
        }


def _value_counts(source: _Source, columns: dict, expr: dict, rows: int) -> None:
    for name, col in columns.items():
        if col["kind"] == "other" or col["distinct"] is None:
            continue
        e = expr[name]
        non_null = f"FROM {source.sql} WHERE {e} IS NOT NULL"
        if col["distinct"] <= MAX_VALUE_COUNTS:
            found = source.query(f"SELECT {e} AS v, count(*) AS n {non_null} GROUP BY v ORDER BY n DESC, v")
            col["value_counts"] = {_key(v): int(n) for v, n in found}
        elif col["distinct"] == rows - col["nulls"]:  # every value once: the top values are any 20
            found = [(v, 1) for (v,) in source.query(f"SELECT {e} AS v {non_null} ORDER BY v LIMIT {TOP_VALUES}")]
        else:
            found = source.query(
                f"SELECT {e} AS v, count(*) AS n {non_null} GROUP BY v ORDER BY n DESC, v LIMIT {TOP_VALUES}"
            )
        col["top_values"] = [[_jsonable(v), int(n)] for v, n in found[:TOP_VALUES]]


def _key(value: Any) -> str:
    v = _jsonable(value)
    return str(v)


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bool | int | str):
        return value
    try:
        import decimal

        if isinstance(value, decimal.Decimal):
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


# -- sample ---------------------------------------------------------------------------------

def sample_indices(rows: int) -> Any:
    """Sorted row positions of the seeded sample (all rows when there are at most 100,000)."""
    import numpy as np

    if rows <= SAMPLE_ROWS:
        return np.arange(rows, dtype=np.int64)
    rng = np.random.default_rng(SAMPLE_SEED)
    return np.sort(rng.choice(rows, size=SAMPLE_ROWS, replace=False)).astype(np.int64)


def _sample(source: _Source, rows: int) -> pa.Table:
    import pyarrow as pa

    idx = sample_indices(rows)
    if source.table is not None:
        return source.table.take(pa.array(idx)) if rows > SAMPLE_ROWS else source.table
    return _sample_files(source, idx)


def _sample_files(source: _Source, idx: Any) -> pa.Table:
    """Take the sample rows from files in one streaming pass (batches, never the whole table)."""
    import numpy as np
    import pyarrow as pa

    if source.files[0].suffix.lower() == ".csv":
        reader = source.con.sql(f"SELECT * FROM {source.sql}").to_arrow_reader(64 * 1024)
        schema = reader.schema
    else:
        import pyarrow.dataset as ds

        dataset = ds.dataset([str(p) for p in source.files], format="parquet")
        reader, schema = dataset.to_batches(batch_size=64 * 1024), dataset.schema
    parts, offset = [], 0
    for batch in reader:
        n = batch.num_rows
        lo, hi = np.searchsorted(idx, [offset, offset + n])
        if hi > lo:
            parts.append(pa.Table.from_batches([batch.take(pa.array(idx[lo:hi] - offset))]))
        offset += n
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts)
