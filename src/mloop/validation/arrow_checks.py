"""The in-memory measurer: numpy and pyarrow.compute kernels over the arrow table (pandas and polars
frames arrive zero-copy where their types allow). Each row-level expectation becomes two boolean
masks, `valid` (its columns are non-null; NaN is null) and `bad` (valid and failing), so counts,
examples and every failing row come from the same arrays."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from mloop.errors import InvalidInput
from mloop.validation import expectations as E
from mloop.validation.checks import EXAMPLES, UNSEEN, Raw, custom_counts, custom_failing_frame
from mloop.validation.engine import Source
from mloop.validation.results import jsonable

_COMPARE = {"<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal", "==": "equal",
            "!=": "not_equal"}


def _column(s: Source, name: str) -> Any:
    """The column, with dictionaries (categoricals) decoded to their values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = s.table.column(name)
    if pa.types.is_dictionary(arr.type):
        arr = pc.cast(arr, arr.type.value_type)
    return arr


def _np(arr: Any) -> Any:
    return arr.to_numpy() if hasattr(arr, "to_numpy") else arr


def null_mask(s: Source, name: str) -> Any:
    """numpy bool mask of null rows (NaN counts as null), or None when there are none."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = s.table.column(name)
    if s.is_float(name):
        if pa.types.is_dictionary(arr.type):
            arr = _column(s, name)
        values = arr.to_numpy()  # nulls come back as NaN
        if len(values) == 0 or not np.isnan(values.min()):  # min() is NaN iff a NaN is present
            return None
        return np.isnan(values)
    if arr.null_count == 0:
        return None
    return _np(pc.is_null(arr))


def _valid(s: Source, columns: list[str]) -> Any:
    """numpy bool mask of rows whose `columns` are all non-null, or None when every row is."""
    valid = None
    for c in columns:
        nulls = null_mask(s, c)
        if nulls is not None:
            valid = ~nulls if valid is None else valid & ~nulls
    return valid


def _bool(arr: Any) -> Any:
    import pyarrow.compute as pc

    return _np(pc.fill_null(arr, False)).astype(bool, copy=False)


def _scalar(value: Any, arr: Any) -> Any:
    """A bound as an arrow scalar of the column's type (dates and times from ISO text)."""
    import pyarrow as pa

    t = arr.type
    if isinstance(value, str) or (hasattr(value, "isoformat") and not isinstance(value, int | float)):
        if pa.types.is_timestamp(t):
            import pandas as pd

            stamp = pd.Timestamp(value)
            if t.tz and stamp.tzinfo is None:
                stamp = stamp.tz_localize("UTC")
            if not t.tz and stamp.tzinfo is not None:
                stamp = stamp.tz_convert("UTC").tz_localize(None)
            return pa.scalar(stamp.to_pydatetime() if stamp.nanosecond == 0 else stamp, type=t)
        if pa.types.is_date(t):
            day = value if isinstance(value, _dt.date) else _dt.date.fromisoformat(str(value))
            return pa.scalar(day, type=t)
        return pa.scalar(str(value))
    return pa.scalar(value)


def _string(arr: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    return pc.cast(arr, pa.string())


def _fails(exp: E.Expectation, s: Source) -> Any:
    """numpy bool mask of rows failing `exp` (not yet restricted to valid rows)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if isinstance(exp, E.Between):
            arr, parts = _column(s, exp.column), []
            fast = _between_numpy(exp, arr)
            if fast is not None:
                return fast
            if exp.min is not None:
                parts.append((pc.less if exp.min_inclusive else pc.less_equal)(arr, _scalar(exp.min, arr)))
            if exp.max is not None:
                parts.append((pc.greater if exp.max_inclusive else pc.greater_equal)(arr, _scalar(exp.max, arr)))
            out = _bool(parts[0])
            for part in parts[1:]:
                out |= _bool(part)
            return out
        if isinstance(exp, E.InSet):
            arr = _column(s, exp.column)
            if not exp.values:
                return np.ones(len(arr), dtype=bool)
            if all(isinstance(v, str) for v in exp.values):
                arr = _string(arr)
                value_set = pa.array(exp.values, type=arr.type)
            else:
                try:
                    value_set = pa.array(exp.values).cast(arr.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                    arr, value_set = pc.cast(arr, pa.float64()), pa.array(exp.values, type=pa.float64())
            return ~_bool(pc.is_in(arr, value_set=value_set))
        if isinstance(exp, E.Regex):
            return ~_bool(pc.match_substring_regex(_string(_column(s, exp.column)), f"^(?:{exp.pattern})$"))
        if isinstance(exp, E.LengthBetween):
            lengths, out = pc.utf8_length(_string(_column(s, exp.column))), None
            for fn, bound in ((pc.less, exp.min), (pc.greater, exp.max)):
                if bound is not None:
                    part = _bool(fn(lengths, bound))
                    out = part if out is None else out | part
            return out
        if isinstance(exp, E.ColumnPair):
            cmp = getattr(pc, _COMPARE[exp.op])(_column(s, exp.a), _column(s, exp.b))
            return ~_bool(cmp)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"expectation {exp.key!r} cannot be checked on this data: {exc}") from None
    raise AssertionError(exp.type)  # pragma: no cover


def _between_numpy(exp: E.Between, arr: Any) -> Any | None:
    """Numeric bounds on a column without nulls (NaN allowed): plain numpy comparisons, no copy."""
    import numpy as np
    import pyarrow as pa

    numeric = (int, float)
    if arr.null_count or not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)) or not all(
            b is None or (isinstance(b, numeric) and not isinstance(b, bool)) for b in (exp.min, exp.max)):
        return None
    values = arr.to_numpy()
    out = np.zeros(len(values), dtype=bool)
    if exp.min is not None:
        out |= (values < exp.min) if exp.min_inclusive else (values <= exp.min)
    if exp.max is not None:
        out |= (values > exp.max) if exp.max_inclusive else (values >= exp.max)
    return out


def _unique_bad(exp: E.Unique, s: Source, valid: Any) -> Any | None:
    """Mask of rows whose (single-column) key occurs more than once; None for several columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = exp.used_columns()
    if len(cols) != 1:
        return None
    arr = _column(s, cols[0])
    n = len(arr)
    idx = None if valid is None else np.flatnonzero(valid)
    keys = arr if idx is None else arr.take(pa.array(idx))
    if len(keys) == 0:
        return np.zeros(n, dtype=bool)
    if pa.types.is_integer(keys.type):
        values = _np(keys)
        if len(values) < 2 or bool((values[1:] > values[:-1]).all()):  # strictly increasing: all distinct
            return np.zeros(n, dtype=bool)
        lo, hi = (v.as_py() for v in pc.min_max(keys).values())
        if hi - lo <= 4 * len(keys) + 1024:  # a dense range (ids): exact counts from a bincount, O(rows)
            offsets = values.astype(np.int64, copy=False) - lo
            counts = np.bincount(offsets)
            if counts.max() <= 1:
                return np.zeros(n, dtype=bool)
            dup_keys = counts[offsets] > 1
            if idx is None:
                return dup_keys
            bad = np.zeros(n, dtype=bool)
            bad[idx] = dup_keys
            return bad
    counts = pc.value_counts(keys)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return np.zeros(n, dtype=bool)
    bad = _bool(pc.is_in(arr, value_set=repeated))
    return bad if valid is None else bad & valid


def masks(exp: E.Expectation, s: Source) -> tuple[Any, Any]:
    """(valid, bad) numpy masks of a row-level expectation (bad implies valid; valid None = all)."""
    valid = _valid(s, exp.used_columns())
    if isinstance(exp, E.Unique):
        bad = _unique_bad(exp, s, valid)
        if bad is None:
            raise NotImplementedError
        return valid, bad
    bad = _fails(exp, s)
    return valid, bad if valid is None else bad & valid


def _in_set_counts(exp: E.InSet, s: Source) -> tuple[int, int] | None:
    """(checked, failing) of a string set without building masks: rows in the set are counted by
    arrow, so a passing check costs one hash lookup per row. None when it does not apply."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not exp.values or not all(isinstance(v, str) for v in exp.values) or s.is_float(exp.column):
        return None
    arr = _string(_column(s, exp.column))
    hits = pc.sum(pc.is_in(arr, value_set=pa.array(exp.values, type=arr.type))).as_py() or 0
    den = len(arr) - arr.null_count
    return den, den - hits


def _values_at(exp: E.Expectation, s: Source, idx: Any) -> list[Any]:
    import pyarrow as pa

    take = pa.array(idx, type=pa.int64())
    cols = exp.used_columns()
    lists = {c: _column(s, c).take(take).to_pylist() for c in cols}
    if len(cols) == 1:
        return lists[cols[0]]
    return [{c: lists[c][i] for c in cols} for i in range(len(idx))]


def _examples(exp: E.Expectation, s: Source, bad: Any) -> list[dict[str, Any]]:
    import numpy as np

    idx = np.flatnonzero(bad)[:EXAMPLES]
    return [{"row": int(i), "value": jsonable(v)} for i, v in zip(idx, _values_at(exp, s, idx), strict=True)]


def _statistic(exp: E.Mean | E.Std | E.Quantile, s: Source) -> float | None:
    import numpy as np

    arr = _column(s, exp.column)
    values = arr.to_numpy().astype(np.float64, copy=False) if arr.null_count == 0 else \
        arr.to_numpy(zero_copy_only=False).astype(np.float64)
    values = values[~np.isnan(values)] if np.isnan(values).any() else values
    if isinstance(exp, E.Mean):
        return float(values.mean()) if len(values) else None
    if isinstance(exp, E.Std):
        return float(values.std(ddof=1)) if len(values) > 1 else None
    return float(np.quantile(values, exp.q)) if len(values) else None


def _observe_failure(exp: E.Expectation, s: Source, valid: Any, bad: Any, raw: Raw) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(exp, E.Between | E.LengthBetween):
        import numpy as np

        arr = _column(s, exp.column)
        if isinstance(exp, E.LengthBetween):
            arr = pc.utf8_length(_string(arr))
        if pa.types.is_floating(arr.type):  # NaN and nulls (NaN after to_numpy) are skipped
            values = arr.to_numpy(zero_copy_only=False)
            raw.seen_range = [float(np.nanmin(values)), float(np.nanmax(values))]
            return
        mm = pc.min_max(arr if valid is None else arr.filter(pa.array(valid)))
        raw.seen_range = [jsonable(mm["min"].as_py()), jsonable(mm["max"].as_py())]
    elif isinstance(exp, E.InSet):
        counts = pc.value_counts(_column(s, exp.column).filter(pa.array(bad)))
        pairs = sorted(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
                       key=lambda p: (-p[1], p[0]))
        raw.unseen = [jsonable(v) for v, _ in pairs[:UNSEEN]]


def measure_all(expectations: list[E.Expectation], s: Source) -> tuple[int, dict[int, Raw]]:
    import numpy as np

    rows = s.table.num_rows
    raws: dict[int, Raw] = {}
    for exp in expectations:
        if isinstance(exp, E.MaxNulls):
            nulls = null_mask(s, exp.column)
            raw = Raw(nulls=0 if nulls is None else int(np.count_nonzero(nulls)))
            if raw.nulls and raw.nulls / rows > exp.fraction + 1e-12:
                raw.examples = [{"row": int(i), "value": None} for i in np.flatnonzero(nulls)[:EXAMPLES]]
        elif isinstance(exp, E.Mean | E.Std | E.Quantile):
            raw = Raw(stat=_statistic(exp, s))
        elif isinstance(exp, E.Custom):
            raw = custom_counts(exp, s)
        elif exp.row_level:
            counts = _in_set_counts(exp, s) if isinstance(exp, E.InSet) else None
            if counts is not None and counts[1] == 0:
                raws[id(exp)] = Raw(den=counts[0], bad=0)
                continue
            try:
                valid, bad = masks(exp, s)
            except NotImplementedError:  # a key over several columns: DuckDB's GROUP BY
                from mloop.validation import sql_checks

                raw = sql_checks.unique_counts(exp, s)
                if raw.bad:
                    raw.examples = sql_checks.examples(exp, s)
            else:
                raw = Raw(den=rows if valid is None else int(np.count_nonzero(valid)), bad=int(np.count_nonzero(bad)))
                if raw.bad:
                    raw.examples = _examples(exp, s, bad)
                    _observe_failure(exp, s, valid, bad, raw)
        else:
            raw = Raw()
        raws[id(exp)] = raw
    return rows, raws


def failing_frame(exp: E.Expectation, s: Source):  # noqa: ANN201
    import numpy as np
    import pyarrow as pa

    if isinstance(exp, E.Custom):
        return custom_failing_frame(exp, s)
    if isinstance(exp, E.MaxNulls):
        nulls = null_mask(s, exp.column)
        idx = np.flatnonzero(nulls) if nulls is not None else np.array([], dtype=np.int64)
    else:
        try:
            _, bad = masks(exp, s)
        except NotImplementedError:
            from mloop.validation import sql_checks

            return sql_checks.failing_frame(exp, s)
        idx = np.flatnonzero(bad)
    frame = s.table.take(pa.array(idx, type=pa.int64())).to_pandas()
    frame.insert(0, "row", idx.astype("int64"))
    return frame
