"""Run expectations over a Source and turn raw counts into results.

Two measurers share one finisher, so both give the same answers (tests compare them):
- in-memory arrow tables: numpy/pyarrow kernels, one vectorised pass per expectation, no copy
  of the data (`arrow_checks`);
- parquet/csv paths: one DuckDB aggregate query for every counting expectation, streaming, and an
  exact GROUP BY for uniqueness (`sql_checks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mloop.validation import expectations as E
from mloop.validation.engine import Source, dtype_matches, normalise_dtype
from mloop.validation.results import ExpectationResult, ValidationResult, jsonable

EXAMPLES = 10
UNSEEN = 20


@dataclass
class Raw:
    """What a measurer found for one expectation (only the fields its type needs)."""

    nulls: int | None = None          # max_nulls
    stat: float | None = None         # mean / std / quantile
    den: int | None = None            # row-level: rows checked (non-null)
    bad: int | None = None            # row-level: failing rows among them
    examples: list[dict[str, Any]] = field(default_factory=list)
    seen_range: list[Any] | None = None   # between / length_between, when failing
    unseen: list[Any] | None = None       # in_set / no_unseen_categories, when failing


def run(expectations: list[E.Expectation], source: Source, suite: str | None = None) -> ValidationResult:
    """Validate `source` against `expectations`."""
    problems = {id(e): _problem(e, source) for e in expectations}
    present = [e for e in expectations if problems[id(e)] is None]
    if source.table is not None:
        from mloop.validation.arrow_checks import measure_all
    else:
        from mloop.validation.sql_checks import measure_all
    rows, raws = measure_all(present, source)
    results = []
    for exp in expectations:
        problem = problems[id(exp)]
        results.append(_base(exp, False, message=problem) if problem else _finish(exp, raws[id(exp)], source, rows))
    return ValidationResult(suite=suite, source=source.label, rows=rows, results=results,
                            _failures=lambda name: failing_rows(expectations, source, name))


def failing_rows(expectations: list[E.Expectation], source: Source, name: str):  # noqa: ANN201
    """Every row breaking expectation `name`: `row` then the table's columns, in row order (pandas)."""
    import pandas as pd

    exp = next(e for e in expectations if e.key == name)
    if _problem(exp, source) or not (exp.row_level or isinstance(exp, E.MaxNulls)):
        return pd.DataFrame({"row": pd.Series([], dtype="int64")})
    if source.table is not None:
        from mloop.validation.arrow_checks import failing_frame
    else:
        from mloop.validation.sql_checks import failing_frame
    return failing_frame(exp, source)


def _missing_columns(exp: E.Expectation, source: Source) -> list[str]:
    return [c for c in exp.used_columns() if c not in source.names]


def _base(exp: E.Expectation, passed: bool, **kw: Any) -> ExpectationResult:
    return ExpectationResult(name=exp.key, type=exp.type, columns=exp.used_columns(), severity=exp.severity,
                             passed=passed, description=exp.describe(), params=jsonable(exp.params()), **kw)


def _problem(exp: E.Expectation, source: Source) -> str | None:
    """Why `exp` cannot be checked on this data (a missing column, a type it cannot compare), or None;
    such an expectation fails with this message instead of stopping the whole validation."""
    from mloop.validation.engine import dtype_family

    missing = _missing_columns(exp, source)
    if missing:
        shown = ", ".join(source.names[:20]) + (", ..." if len(source.names) > 20 else "")
        names = ", ".join(repr(c) for c in missing)
        return f"column {names} not found in the data (columns: {shown})"
    numeric = ("integer", "float")

    def family(col: str) -> str:
        return dtype_family(source.type_of(col))

    if isinstance(exp, E.Mean | E.Std | E.Quantile) and family(exp.column) not in numeric:
        return f"column {exp.column!r} is {normalise_dtype(source.type_of(exp.column))}; {exp.type} needs numbers"
    if isinstance(exp, E.Between):
        bounds = [b for b in (exp.min, exp.max) if b is not None]
        wants = "numbers" if all(isinstance(b, int | float) for b in bounds) else "dates or times"
        ok = family(exp.column) in numeric if wants == "numbers" else family(exp.column) in ("datetime", "string")
        if not ok:
            return (f"column {exp.column!r} is {normalise_dtype(source.type_of(exp.column))}; "
                    f"these bounds need {wants}")
    if isinstance(exp, E.ColumnPair):
        fa, fb = family(exp.a), family(exp.b)
        if not (fa == fb or (fa in numeric and fb in numeric)):
            return (f"columns {exp.a!r} ({normalise_dtype(source.type_of(exp.a))}) and {exp.b!r} "
                    f"({normalise_dtype(source.type_of(exp.b))}) cannot be compared")
    return None


def _range(exp: Any) -> str:
    def show(v: Any, default: str) -> str:
        if v is None:
            return default
        return f"{v:,}" if isinstance(v, int) else f"{v:.6g}" if isinstance(v, float) else str(v)

    return f"[{show(exp.min, '-inf')}, {show(exp.max, 'inf')}]"


def _finish(exp: E.Expectation, raw: Raw, s: Source, rows: int) -> ExpectationResult:
    if isinstance(exp, E.ColumnPresent):
        return _base(exp, True, observed=True, message="present")
    if isinstance(exp, E.Dtype):
        t = s.type_of(exp.column)
        ok = dtype_matches(exp.dtype, t)
        return _base(exp, ok, observed=normalise_dtype(t),
                     message="" if ok else f"dtype is {normalise_dtype(t)}, expected {exp.dtype}")
    if isinstance(exp, E.MaxNulls):
        nulls = int(raw.nulls or 0)
        share = nulls / rows if rows else 0.0
        ok = share <= exp.fraction + 1e-12
        msg = "" if ok else f"{nulls:,} null rows ({share:.4%}), at most {exp.fraction:.4%} allowed"
        return _base(exp, ok, observed=share, failing_rows=nulls, failing_fraction=share, checked_rows=rows,
                     examples=raw.examples if not ok else [], message=msg)
    if isinstance(exp, E.RowCount):
        ok = (exp.min is None or rows >= exp.min) and (exp.max is None or rows <= exp.max)
        return _base(exp, ok, observed=rows, message="" if ok else f"{rows:,} rows, expected {_range(exp)}")
    if isinstance(exp, E.Mean | E.Std | E.Quantile):
        value = None if raw.stat is None else float(raw.stat)
        if value is not None and value != value:  # NaN: e.g. the std of one value
            value = None
        ok = value is not None and (exp.min is None or value >= exp.min) and (exp.max is None or value <= exp.max)
        if value is None:
            msg = f"not enough non-null values to compute the {exp.type}"
        else:
            msg = "" if ok else f"{exp.type} is {value:.6g}, expected {_range(exp)}"
        return _base(exp, ok, observed=value, message=msg)
    den, bad = int(raw.den or 0), int(raw.bad or 0)
    frac = bad / den if den else 0.0
    passed = den == 0 or (den - bad) >= exp.mostly * den - 1e-9 * den
    observed: Any = frac
    if isinstance(exp, E.Between | E.LengthBetween) and bad:
        observed = jsonable(raw.seen_range)
    if isinstance(exp, E.InSet) and bad:
        observed = jsonable(raw.unseen)
    msg = ""
    if bad:
        msg = f"{bad:,} of {den:,} {'' if isinstance(exp, E.Custom) else 'non-null '}rows fail ({frac:.4%})"
        if exp.mostly < 1.0:
            msg += f"; at least {exp.mostly:.2%} must pass"
        if isinstance(exp, E.InSet):
            msg += f"; values not in the set: {', '.join(repr(v) for v in (raw.unseen or [])[:5])}"
        if isinstance(exp, E.Between | E.LengthBetween) and raw.seen_range:
            msg += f"; seen [{raw.seen_range[0]}, {raw.seen_range[1]}], expected {_range(exp)}"
    return _base(exp, passed, observed=observed, failing_rows=bad, failing_fraction=frac, checked_rows=den,
                 examples=jsonable(raw.examples), message=msg)


def custom_mask(fn: Any, frame: Any) -> Any:
    """Call a custom predicate on a pandas batch; True = the row passes (a null answer fails)."""
    import numpy as np
    import pandas as pd

    from mloop.errors import InvalidInput

    try:
        out = fn(frame)
    except Exception as exc:
        raise InvalidInput(f"custom expectation raised {type(exc).__name__}: {exc}") from exc
    if isinstance(out, bool | np.bool_):
        return np.full(len(frame), bool(out))
    mask = pd.Series(out).astype("boolean").fillna(False).to_numpy(dtype=bool)
    if len(mask) != len(frame):
        raise InvalidInput(f"custom expectation returned {len(mask)} values for {len(frame)} rows")
    return mask


def custom_counts(exp: E.Custom, s: Source) -> Raw:
    """Stream batches through the predicate; examples are the failing rows with the lowest indices."""
    import numpy as np

    fn, raw, found = exp.resolve(), Raw(den=0, bad=0), []
    for rows, frame in s.batches(exp.used_columns() or None):
        ok = custom_mask(fn, frame)
        raw.den += len(frame)
        bad_idx = np.flatnonzero(~ok)
        raw.bad += len(bad_idx)
        found += [(int(rows[j]), frame.iloc[int(j)].to_dict()) for j in bad_idx[:EXAMPLES]]
        found = sorted(found, key=lambda item: item[0])[:EXAMPLES]
    raw.examples = [{"row": row, "value": jsonable(value)} for row, value in found]
    return raw


def custom_failing_frame(exp: E.Custom, s: Source):  # noqa: ANN201
    import numpy as np
    import pandas as pd

    parts = []
    for rows, frame in s.batches():
        bad = np.flatnonzero(~custom_mask(exp.resolve(), frame))
        part = frame.iloc[bad].copy()
        part.insert(0, "row", rows[bad].astype("int64"))
        parts.append(part)
    if not parts:
        return pd.DataFrame({"row": pd.Series([], dtype="int64")})
    return pd.concat(parts, ignore_index=True).sort_values("row", kind="stable", ignore_index=True)
