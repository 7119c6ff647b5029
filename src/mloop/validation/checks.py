"""Compile expectations to SQL over a Source, run them in one aggregate pass, and build results.

Each row-level expectation is a pair of predicates: `applicable` (its columns are non-null) and
`fails`; the aggregate pass counts both with `count(*) FILTER (...)`. Uniqueness is an exact
GROUP BY ... HAVING count(*) > 1, and `custom` predicates run on streamed batches in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mloop.validation import expectations as E
from mloop.validation.engine import EXAMPLES, ROW, Source, dtype_matches, lit, normalise_dtype, q
from mloop.validation.results import ExpectationResult, ValidationResult, jsonable


@dataclass
class Plan:
    """How one expectation is checked: aggregates to compute, and (row-level) its predicates."""

    exp: E.Expectation
    aggs: dict[str, str] = field(default_factory=dict)
    applicable: str | None = None
    fails: str | None = None
    finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # -> observed/passed overrides


def run(expectations: list[E.Expectation], source: Source, suite: str | None = None) -> ValidationResult:
    """Validate `source` against `expectations`; one scan for every counting expectation."""
    plans: list[Plan | ExpectationResult] = []
    for i, exp in enumerate(expectations):
        missing = [c for c in exp.used_columns() if c not in source.names]
        if missing:
            plans.append(_missing(exp, missing, source))
        else:
            plans.append(_plan(exp, source, f"e{i}"))
    aggs = {"n": "count(*)"}
    for i, p in enumerate(plans):
        if isinstance(p, Plan):
            aggs.update(p.aggs)
            if p.applicable is not None and not isinstance(p.exp, E.Unique | E.Custom):
                aggs[f"e{i}_den"] = f"count(*) FILTER (WHERE {p.applicable})"
                aggs[f"e{i}_bad"] = f"count(*) FILTER (WHERE {p.applicable} AND {p.fails})"
    sql = "SELECT " + ", ".join(f"{expr} AS {q(alias)}" for alias, expr in aggs.items()) + f" FROM {source.rel}"
    cursor = source.con.execute(sql)
    values = dict(zip(aggs, cursor.fetchone(), strict=True))
    rows = int(values["n"])

    results = []
    for i, p in enumerate(plans):
        if isinstance(p, ExpectationResult):
            results.append(p)
            continue
        if isinstance(p.exp, E.Unique):
            den, bad = _unique_counts(p, source)
        elif isinstance(p.exp, E.Custom):
            den, bad, examples = _custom_counts(p.exp, source)
        elif p.applicable is not None:
            den, bad = int(values[f"e{i}_den"]), int(values[f"e{i}_bad"])
        results.append(_finish(p, values, source, rows, den if p.applicable is not None else None,
                               bad if p.applicable is not None else None,
                               examples if isinstance(p.exp, E.Custom) else None))
    return ValidationResult(suite=suite, source=source.label, rows=rows, results=results,
                            _failures=lambda name: failing_rows(expectations, source, name))


def _base(exp: E.Expectation, passed: bool, **kw: Any) -> ExpectationResult:
    return ExpectationResult(name=exp.key, type=exp.type, columns=exp.used_columns(), severity=exp.severity,
                             passed=passed, description=exp.describe(), params=jsonable(exp.params()), **kw)


def _missing(exp: E.Expectation, missing: list[str], source: Source) -> ExpectationResult:
    shown = ", ".join(source.names[:20]) + (", ..." if len(source.names) > 20 else "")
    names = ", ".join(repr(c) for c in missing)
    return _base(exp, False, observed=None,
                 message=f"column {names} not found in the data (columns: {shown})")


def _plan(exp: E.Expectation, s: Source, a: str) -> Plan:
    p = Plan(exp)
    if isinstance(exp, E.ColumnPresent | E.Dtype):
        return p
    if isinstance(exp, E.MaxNulls):
        p.aggs[f"{a}_nulls"] = f"count(*) FILTER (WHERE {s.isnull(exp.column)})"
        return p
    if isinstance(exp, E.RowCount):
        return p
    if isinstance(exp, E.Mean | E.Std | E.Quantile):
        c, where = q(exp.column), s.notnull(exp.column)
        fn = {"mean": f"favg({c})", "std": f"stddev_samp({c})"}.get(exp.type) or f"quantile_cont({c}, {exp.q})"
        if isinstance(exp, E.Mean | E.Std):
            fn = fn.replace(c, f"CAST({c} AS DOUBLE)")
        p.aggs[f"{a}_stat"] = f"{fn} FILTER (WHERE {where})"
        return p
    cols = exp.used_columns()
    p.applicable = "(" + " AND ".join(s.notnull(c) for c in cols) + ")" if cols else "TRUE"
    if isinstance(exp, E.Unique):
        p.fails = "TRUE"  # computed by a GROUP BY
    elif isinstance(exp, E.Between):
        c, parts = s.col(exp.column), []
        if exp.min is not None:
            parts.append(f"{c} {'<' if exp.min_inclusive else '<='} {_bound(exp.min, s, exp.column)}")
        if exp.max is not None:
            parts.append(f"{c} {'>' if exp.max_inclusive else '>='} {_bound(exp.max, s, exp.column)}")
        p.fails = "(" + " OR ".join(parts) + ")"
        p.aggs[f"{a}_min"] = f"min({q(exp.column)}) FILTER (WHERE {p.applicable})"
        p.aggs[f"{a}_max"] = f"max({q(exp.column)}) FILTER (WHERE {p.applicable})"
    elif isinstance(exp, E.InSet):
        p.fails = _not_in(exp.values, s, exp.column)
    elif isinstance(exp, E.Regex):
        p.fails = f"NOT regexp_full_match(CAST({q(exp.column)} AS VARCHAR), {lit(exp.pattern)})"
    elif isinstance(exp, E.LengthBetween):
        ln, parts = f"length(CAST({q(exp.column)} AS VARCHAR))", []
        if exp.min is not None:
            parts.append(f"{ln} < {exp.min}")
        if exp.max is not None:
            parts.append(f"{ln} > {exp.max}")
        p.fails = "(" + " OR ".join(parts) + ")"
        p.aggs[f"{a}_min"] = f"min({ln}) FILTER (WHERE {p.applicable})"
        p.aggs[f"{a}_max"] = f"max({ln}) FILTER (WHERE {p.applicable})"
    elif isinstance(exp, E.ColumnPair):
        p.fails = f"NOT ({s.col(exp.a)} {E.COMPARISONS[exp.op]} {s.col(exp.b)})"
    elif isinstance(exp, E.Custom):
        p.applicable, p.fails = "TRUE", "TRUE"
    else:  # pragma: no cover - every registered type is handled above
        raise AssertionError(exp.type)
    return p


def _bound(value: Any, s: Source, column: str) -> str:
    import pyarrow as pa

    t = s.type_of(column)
    if isinstance(value, str) or hasattr(value, "isoformat"):
        text = value if isinstance(value, str) else value.isoformat()
        if pa.types.is_timestamp(t):
            return f"CAST({lit(text)} AS {'TIMESTAMPTZ' if t.tz else 'TIMESTAMP'})"
        if pa.types.is_date(t):
            return f"CAST({lit(text)} AS DATE)"
        return lit(text)
    return lit(value)


def _not_in(values: list[Any], s: Source, column: str) -> str:
    if not values:
        return "TRUE"
    if all(isinstance(v, str) for v in values):
        col = f"CAST({q(column)} AS VARCHAR)"
    else:
        col = s.col(column)
    return f"({col} NOT IN ({', '.join(lit(v) for v in values)}))"


def _unique_counts(p: Plan, s: Source) -> tuple[int, int]:
    keys = ", ".join(q(c) for c in p.exp.used_columns())
    den, bad = s.con.execute(
        f"SELECT coalesce(sum(k), 0), coalesce(sum(k) FILTER (WHERE k > 1), 0) FROM "
        f"(SELECT count(*) AS k FROM {s.rel} WHERE {p.applicable} GROUP BY {keys})").fetchone()
    return int(den), int(bad)


def _custom_mask(fn: Callable[[Any], Any], frame: Any) -> Any:
    import numpy as np
    import pandas as pd

    from mloop.errors import InvalidInput

    try:
        out = fn(frame)
    except Exception as exc:
        raise InvalidInput(f"custom expectation raised {type(exc).__name__}: {exc}") from exc
    mask = pd.Series(out).astype("boolean").fillna(False).to_numpy(dtype=bool) if not isinstance(
        out, bool) else np.full(len(frame), out)
    if len(mask) != len(frame):
        raise InvalidInput(f"custom expectation returned {len(mask)} values for {len(frame)} rows")
    return mask


def _custom_counts(exp: E.Custom, s: Source) -> tuple[int, int, list[dict[str, Any]]]:
    import numpy as np

    fn, den, bad, examples = exp.resolve(), 0, 0, []
    for offset, frame in s.batches(exp.used_columns() or None):
        ok = _custom_mask(fn, frame)
        den += len(frame)
        bad_idx = np.flatnonzero(~ok)
        bad += len(bad_idx)
        for j in bad_idx[: max(0, EXAMPLES - len(examples))]:
            row = frame.iloc[int(j)]
            examples.append({"row": offset + int(j), "value": jsonable(row.to_dict())})
    return den, bad, examples


def _finish(p: Plan, values: dict[str, Any], s: Source, rows: int, den: int | None, bad: int | None,
            custom_examples: list[dict[str, Any]] | None) -> ExpectationResult:
    exp = p.exp
    alias = _alias_of(p, values)
    if isinstance(exp, E.ColumnPresent):
        return _base(exp, True, observed=True, message="present")
    if isinstance(exp, E.Dtype):
        t = s.type_of(exp.column)
        ok = dtype_matches(exp.dtype, t)
        return _base(exp, ok, observed=normalise_dtype(t),
                     message="" if ok else f"dtype is {normalise_dtype(t)}, expected {exp.dtype}")
    if isinstance(exp, E.MaxNulls):
        nulls = int(values[f"{alias}_nulls"])
        share = nulls / rows if rows else 0.0
        ok = share <= exp.fraction + 1e-12
        msg = "" if ok else f"{nulls:,} null rows ({share:.4%}), at most {exp.fraction:.4%} allowed"
        return _base(exp, ok, observed=share, failing_rows=nulls, failing_fraction=share, checked_rows=rows,
                     examples=_examples(p, s) if nulls and not ok else [], message=msg)
    if isinstance(exp, E.RowCount):
        ok = (exp.min is None or rows >= exp.min) and (exp.max is None or rows <= exp.max)
        return _base(exp, ok, observed=rows, message="" if ok else f"{rows:,} rows, expected {_range(exp)}")
    if isinstance(exp, E.Mean | E.Std | E.Quantile):
        value = values[f"{alias}_stat"]
        value = None if value is None else float(value)
        ok = value is not None and (exp.min is None or value >= exp.min) and (exp.max is None or value <= exp.max)
        if value is None:
            msg = f"no non-null values to compute the {exp.type} of"
        else:
            msg = "" if ok else f"{exp.type} is {value:.6g}, expected {_range(exp)}"
        return _base(exp, ok, observed=value, message=msg)
    # row-level
    assert den is not None and bad is not None
    frac = bad / den if den else 0.0
    passed = den == 0 or (den - bad) >= exp.mostly * den - 1e-9 * den
    observed: Any = frac
    if isinstance(exp, E.Between | E.LengthBetween):
        lo, hi = values[f"{alias}_min"], values[f"{alias}_max"]
        observed = None if den == 0 else [jsonable(lo), jsonable(hi)]
    if isinstance(exp, E.InSet) and bad:
        observed = _unseen(p, s)
    if isinstance(exp, E.Custom):
        examples = custom_examples or []
    else:
        examples = _examples(p, s) if bad else []
    msg = ""
    if bad:
        msg = f"{bad:,} of {den:,} non-null rows fail ({frac:.4%})"
        if isinstance(exp, E.Custom):
            msg = msg.replace(" non-null", "")
        if exp.mostly < 1.0:
            msg += f"; at least {exp.mostly:.2%} must pass"
        if isinstance(exp, E.InSet):
            msg += f"; values not in the set: {', '.join(repr(v) for v in observed[:5])}"
    return _base(exp, passed, observed=observed, failing_rows=bad, failing_fraction=frac, checked_rows=den,
                 examples=examples, message=msg)


def _alias_of(p: Plan, values: dict[str, Any]) -> str | None:
    for key in p.aggs:
        return key.rsplit("_", 1)[0]
    return None


def _range(exp: Any) -> str:
    lo = "-inf" if exp.min is None else f"{exp.min:,}" if isinstance(exp.min, int) else f"{exp.min:.6g}"
    hi = "inf" if exp.max is None else f"{exp.max:,}" if isinstance(exp.max, int) else f"{exp.max:.6g}"
    return f"[{lo}, {hi}]"


def _value_sql(exp: E.Expectation) -> str:
    cols = exp.used_columns()
    if len(cols) == 1:
        return q(cols[0])
    return "struct_pack(" + ", ".join(f"{q(c)} := {q(c)}" for c in cols) + ")"


def _failing_sql(p: Plan, s: Source, select: str) -> str:
    """SELECT `select` FROM the rows (with their index) that break the plan's expectation."""
    exp = p.exp
    if isinstance(exp, E.MaxNulls):
        return f"SELECT {select} FROM {s.rel_rows} AS t WHERE {s.isnull(exp.column)}"
    if isinstance(exp, E.Unique):
        keys = ", ".join(q(c) for c in exp.used_columns())
        return (f"SELECT {select} FROM {s.rel_rows} AS t SEMI JOIN (SELECT {keys} FROM {s.rel} "
                f"WHERE {p.applicable} GROUP BY {keys} HAVING count(*) > 1) AS d USING ({keys})")
    return f"SELECT {select} FROM {s.rel_rows} AS t WHERE {p.applicable} AND {p.fails}"


def _examples(p: Plan, s: Source) -> list[dict[str, Any]]:
    sql = _failing_sql(p, s, f"t.{q(ROW)}, {_value_sql(p.exp)}")
    rows = s.con.execute(f"{sql} ORDER BY 1 LIMIT {EXAMPLES}").fetchall()
    return [{"row": int(r), "value": jsonable(v)} for r, v in rows]


def _unseen(p: Plan, s: Source, limit: int = 20) -> list[Any]:
    c = q(p.exp.column)
    rows = s.con.execute(f"SELECT {c}, count(*) AS k FROM {s.rel} WHERE {p.applicable} AND {p.fails} "
                         f"GROUP BY {c} ORDER BY k DESC, 1 LIMIT {limit}").fetchall()
    return [jsonable(r[0]) for r in rows]


def failing_rows(expectations: list[E.Expectation], s: Source, name: str):  # noqa: ANN201
    """Every row breaking expectation `name`: its columns plus `row`, in row order (pandas)."""
    import pandas as pd

    exp = next(e for e in expectations if e.key == name)
    missing = [c for c in exp.used_columns() if c not in s.names]
    if missing or isinstance(exp, E.ColumnPresent | E.Dtype | E.RowCount | E.Mean | E.Std | E.Quantile):
        return pd.DataFrame({"row": pd.Series([], dtype="int64")})
    if isinstance(exp, E.Custom):
        import numpy as np

        parts = []
        for offset, frame in s.batches():
            bad = np.flatnonzero(~_custom_mask(exp.resolve(), frame))
            part = frame.iloc[bad].copy()
            part.insert(0, "row", bad + offset)
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"row": []})
    p = _plan(exp, s, "x")
    frame = s.con.execute(_failing_sql(p, s, "t.*") + f" ORDER BY t.{q(ROW)}").df()
    frame.insert(0, "row", frame.pop(ROW).astype("int64"))
    return frame
