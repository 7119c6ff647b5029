"""The DuckDB measurer (parquet/csv paths, and the fallback for multi-column keys): each row-level
expectation is a pair of SQL predicates, `applicable` (its columns are non-null) and `fails`, and
one aggregate query counts them all with `count(*) FILTER (...)` in a single streaming scan.
Uniqueness is an exact GROUP BY ... HAVING count(*) > 1 (DuckDB spills it to disk when large)."""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInput
from mloop.validation import expectations as E
from mloop.validation.checks import EXAMPLES, UNSEEN, Raw, custom_counts, custom_failing_frame
from mloop.validation.engine import ROW, Source, lit, q
from mloop.validation.results import jsonable


def predicates(exp: E.Expectation, s: Source) -> tuple[str, str]:
    """(applicable, fails) SQL predicates of a row-level expectation."""
    cols = exp.used_columns()
    applicable = "(" + " AND ".join(s.notnull(c) for c in cols) + ")" if cols else "TRUE"
    if isinstance(exp, E.Unique | E.Custom):
        return applicable, "TRUE"  # counted by a GROUP BY / in Python
    if isinstance(exp, E.Between):
        c, parts = s.col(exp.column), []
        if exp.min is not None:
            parts.append(f"{c} {'<' if exp.min_inclusive else '<='} {_bound(exp.min, s, exp.column)}")
        if exp.max is not None:
            parts.append(f"{c} {'>' if exp.max_inclusive else '>='} {_bound(exp.max, s, exp.column)}")
        return applicable, "(" + " OR ".join(parts) + ")"
    if isinstance(exp, E.InSet):
        return applicable, _not_in(exp.values, s, exp.column)
    if isinstance(exp, E.Regex):
        return applicable, f"NOT regexp_full_match(CAST({q(exp.column)} AS VARCHAR), {lit(exp.pattern)})"
    if isinstance(exp, E.LengthBetween):
        ln, parts = _length(exp.column), []
        if exp.min is not None:
            parts.append(f"{ln} < {exp.min}")
        if exp.max is not None:
            parts.append(f"{ln} > {exp.max}")
        return applicable, "(" + " OR ".join(parts) + ")"
    if isinstance(exp, E.ColumnPair):
        return applicable, f"NOT ({s.col(exp.a)} {E.COMPARISONS[exp.op]} {s.col(exp.b)})"
    raise AssertionError(exp.type)  # pragma: no cover


def _length(column: str) -> str:
    return f"length(CAST({q(column)} AS VARCHAR))"


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
    col = f"CAST({q(column)} AS VARCHAR)" if all(isinstance(v, str) for v in values) else s.col(column)
    return f"({col} NOT IN ({', '.join(lit(v) for v in values)}))"


def measure_all(expectations: list[E.Expectation], s: Source) -> tuple[int, dict[int, Raw]]:
    aggs: dict[str, str] = {"n": "count(*)"}
    for i, exp in enumerate(expectations):
        if isinstance(exp, E.MaxNulls):
            aggs[f"e{i}_nulls"] = f"count(*) FILTER (WHERE {s.isnull(exp.column)})"
        elif isinstance(exp, E.Mean | E.Std | E.Quantile):
            c = q(exp.column)
            fn = {"mean": f"favg(CAST({c} AS DOUBLE))", "std": f"stddev_samp(CAST({c} AS DOUBLE))"}.get(
                exp.type) or f"quantile_cont({c}, {exp.q})"
            aggs[f"e{i}_stat"] = f"{fn} FILTER (WHERE {s.notnull(exp.column)})"
        elif exp.row_level and not isinstance(exp, E.Unique | E.Custom):
            applicable, fails = predicates(exp, s)
            aggs[f"e{i}_den"] = f"count(*) FILTER (WHERE {applicable})"
            aggs[f"e{i}_bad"] = f"count(*) FILTER (WHERE {applicable} AND {fails})"
    sql = "SELECT " + ", ".join(f"{expr} AS {q(alias)}" for alias, expr in aggs.items()) + f" FROM {s.rel}"
    import duckdb

    try:
        values = dict(zip(aggs, s.con.execute(sql).fetchone(), strict=True))
    except duckdb.Error as exc:  # e.g. a column pair of types that do not compare
        raise InvalidInput(f"the suite cannot be checked on {s.label}: {str(exc).splitlines()[0]}") from None
    raws: dict[int, Raw] = {}
    for i, exp in enumerate(expectations):
        if isinstance(exp, E.MaxNulls):
            raw = Raw(nulls=int(values[f"e{i}_nulls"]))
            if raw.nulls and raw.nulls / max(int(values["n"]), 1) > exp.fraction + 1e-12:
                raw.examples = examples(exp, s)
        elif isinstance(exp, E.Mean | E.Std | E.Quantile):
            raw = Raw(stat=values[f"e{i}_stat"])
        elif isinstance(exp, E.Unique):
            raw = unique_counts(exp, s)
        elif isinstance(exp, E.Custom):
            raw = custom_counts(exp, s)
        elif exp.row_level:
            raw = Raw(den=int(values[f"e{i}_den"]), bad=int(values[f"e{i}_bad"]))
        else:
            raw = Raw()
        if exp.row_level and raw.bad and not isinstance(exp, E.Custom):
            raw.examples = examples(exp, s)
            _observe_failure(exp, s, raw)
        raws[id(exp)] = raw
    return int(values["n"]), raws


def unique_counts(exp: E.Expectation, s: Source) -> Raw:
    applicable, _ = predicates(exp, s)
    keys = ", ".join(q(c) for c in exp.used_columns())
    den, bad = s.con.execute(
        f"SELECT coalesce(sum(k), 0), coalesce(sum(k) FILTER (WHERE k > 1), 0) FROM "
        f"(SELECT count(*) AS k FROM {s.rel} WHERE {applicable} GROUP BY {keys})").fetchone()
    return Raw(den=int(den), bad=int(bad))


def _observe_failure(exp: E.Expectation, s: Source, raw: Raw) -> None:
    applicable, fails = predicates(exp, s)
    if isinstance(exp, E.Between | E.LengthBetween):
        value = q(exp.column) if isinstance(exp, E.Between) else _length(exp.column)
        lo, hi = s.con.execute(f"SELECT min({value}), max({value}) FROM {s.rel} WHERE {applicable}").fetchone()
        raw.seen_range = [jsonable(lo), jsonable(hi)]
    elif isinstance(exp, E.InSet):
        c = q(exp.column)
        found = s.con.execute(f"SELECT {c}, count(*) AS k FROM {s.rel} WHERE {applicable} AND {fails} "
                              f"GROUP BY {c} ORDER BY k DESC, 1 LIMIT {UNSEEN}").fetchall()
        raw.unseen = [jsonable(r[0]) for r in found]


def _value_sql(exp: E.Expectation) -> str:
    cols = exp.used_columns()
    if len(cols) == 1:
        return f"t.{q(cols[0])}"
    return "struct_pack(" + ", ".join(f"{q(c)} := t.{q(c)}" for c in cols) + ")"


def _failing_sql(exp: E.Expectation, s: Source, select: str) -> str:
    """SELECT `select` FROM the rows (with their index) that break `exp`."""
    if isinstance(exp, E.MaxNulls):
        return f"SELECT {select} FROM {s.rel_rows} AS t WHERE {s.isnull(exp.column)}"
    applicable, fails = predicates(exp, s)
    if isinstance(exp, E.Unique):
        keys = ", ".join(q(c) for c in exp.used_columns())
        return (f"SELECT {select} FROM {s.rel_rows} AS t SEMI JOIN (SELECT {keys} FROM {s.rel} "
                f"WHERE {applicable} GROUP BY {keys} HAVING count(*) > 1) AS d USING ({keys})")
    return f"SELECT {select} FROM {s.rel_rows} AS t WHERE {applicable} AND {fails}"


def examples(exp: E.Expectation, s: Source) -> list[dict[str, Any]]:
    sql = _failing_sql(exp, s, f"t.{q(ROW)}, {_value_sql(exp)}")
    rows = s.con.execute(f"{sql} ORDER BY 1 LIMIT {EXAMPLES}").fetchall()
    return [{"row": int(r), "value": jsonable(v)} for r, v in rows]


def failing_frame(exp: E.Expectation, s: Source):  # noqa: ANN201
    if isinstance(exp, E.Custom):
        return custom_failing_frame(exp, s)
    frame = s.con.execute(_failing_sql(exp, s, "t.*") + f" ORDER BY t.{q(ROW)}").df()
    frame.insert(0, "row", frame.pop(ROW).astype("int64"))
    return frame
