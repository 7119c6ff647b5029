"""search_runs against a brute-force Python filter over ~200 random runs, ordering with NULLs
last, limits, bad filters, and proof that the filter runs in SQL (a fixed number of statements)."""

from __future__ import annotations

import math
import operator
import random
import re

import pytest
from sqlalchemy import event

import mloop
from mloop.errors import InvalidInput
from mloop.tracking.writer import get_writer

N_RUNS = 200
N_FILTERS = 160

PARAM_VALUES = {"a": ["1", "2", "10", "abc", "Abc", "a_c", "a%c", ""], "b": ["x.y", "X", "y", "zz", "Zz"],
                "lr.init": ["0.1", "0.01", "1e-3"]}
TAG_VALUES = {"team": ["growth", "Growth", "GROWTH", "risk", "ops_1", "ops%", "opsx1"], "note.x": ["a b", "ä", "z"]}
PATTERNS = ["%a%", "A%", "_b_", "%", "g%", "G%", "gro%", "%TH", "ops\\_%", "ops\\%", "ops_1", "%.%", "x.y", "a_c",
            "a\\_c", "", "_", "%1", "ä", "risk"]
OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _like(value: str, pattern: str, insensitive: bool) -> bool:
    regex, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    if insensitive:  # ASCII case folding, as SQLite's lower() does
        value, regex = value.encode().lower().decode(), regex.encode().lower().decode()
    return re.fullmatch(regex, value, re.S) is not None


def _matches(value, op: str, target) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if op == "IN":
        return value in target
    if op == "NOT IN":
        return value not in target
    if op in ("LIKE", "ILIKE"):
        return _like(value, target, op == "ILIKE")
    return OPS[op](value, target)


def _key(kind: str, key: str) -> str:
    return f"{kind}.`{key}`" if "." in key else f"{kind}.{key}"


def _literal(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(float(value))


def _pattern_literal(pattern: str) -> str:
    return "'" + pattern + "'"  # backslashes in a pattern stay as written (they escape LIKE wildcards)


def _make_runs(rng: random.Random) -> dict[str, dict]:
    truth: dict[str, dict] = {}
    statuses = ["FINISHED"] * 8 + ["FAILED", "KILLED"]
    for i in range(N_RUNS):
        params = {k: rng.choice(v) for k, v in PARAM_VALUES.items() if rng.random() < 0.75}
        tags = {k: rng.choice(v) for k, v in TAG_VALUES.items() if rng.random() < 0.7}
        metrics: dict[str, float] = {}
        run = mloop.start_run(experiment="search", name=f"run-{i % 7}-{rng.choice('abcXYZ')}", params=params,
                              tags=tags)
        if rng.random() < 0.85:
            r = rng.random()
            final = math.nan if r < 0.1 else math.inf if r < 0.13 else -math.inf if r < 0.15 else rng.uniform(-1, 1)
            steps = rng.randint(1, 3)
            for step in range(steps - 1):
                run.log_metric("m1", rng.uniform(-5, 5), step=step)
            run.log_metric("m1", final, step=10)
            run.log_metric("m1", rng.uniform(-5, 5), step=2)  # lower step, newer time: not the latest
            metrics["m1"] = final
        if rng.random() < 0.5:
            metrics["m2"] = float(rng.randint(0, 5))
            run.log_metric("m2", metrics["m2"])
        if rng.random() < 0.5:
            metrics["acc.val"] = rng.choice([0.5, 0.75, 0.9])
            run.log_metric("acc.val", metrics["acc.val"])
        status = rng.choice(statuses)
        run.end(status)
        truth[run.id] = {"params": params, "tags": tags, "metrics": metrics, "run_name": run.name, "status": status}
    return truth


def _random_clause(rng: random.Random, truth: dict) -> tuple[str, callable]:
    kind = rng.choice(["metrics", "metrics", "params", "params", "tags", "tags", "attributes"])
    if kind == "metrics":
        key = rng.choice(["m1", "m2", "acc.val", "absent"])
        op = rng.choice([*OPS, "IN", "NOT IN"])
        pool = [r["metrics"][key] for r in truth.values() if key in r["metrics"]
                and not math.isnan(r["metrics"][key])] or [0.0]
        if op in ("IN", "NOT IN"):
            target = tuple(rng.sample(pool, min(3, len(pool))))
            text = f"{_key(kind, key)} {op} ({', '.join(repr(float(v)) for v in target)})"
        else:
            target = rng.choice(pool) if rng.random() < 0.6 else rng.choice([rng.uniform(-1, 1), math.inf, -math.inf])
            lit = "1e999" if target == math.inf else "-1e999" if target == -math.inf else repr(float(target))
            text = f"{_key(kind, key)} {op} {lit}"
        return text, lambda r: _matches(r["metrics"].get(key), op, target)
    if kind == "attributes":
        key = rng.choice(["run_name", "status"])
        pool = sorted({r[key] for r in truth.values()})
        getter = lambda r: r[key]  # noqa: E731
    else:
        values = PARAM_VALUES if kind == "params" else TAG_VALUES
        key = rng.choice([*values, "absent"])
        pool = values.get(key, ["x"])
        getter = lambda r: r[kind].get(key)  # noqa: E731
    op = rng.choice([*OPS, "LIKE", "LIKE", "ILIKE", "ILIKE", "IN", "NOT IN"])
    if op in ("LIKE", "ILIKE"):
        target = rng.choice(PATTERNS + ["run-1%", "RUN-%", "%X", "FIN%", "%ED"])
        text = f"{_key(kind, key)} {op} {_pattern_literal(target)}"
    elif op in ("IN", "NOT IN"):
        target = tuple(rng.sample(pool, min(2, len(pool))))
        text = f"{_key(kind, key)} {op} ({', '.join(_literal(v) for v in target)})"
    else:
        target = rng.choice(pool + ["b", "Z", "1", "run-3"])
        text = f"{_key(kind, key)} {op} {_literal(target)}"
    return text, lambda r: _matches(getter(r), op, target)


def _order_value(kind: str, key: str, r: dict):
    if kind == "attributes":
        return r[key]
    value = r[kind].get(key)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _expected_order(ids: list[str], truth: dict, loaded: dict, orders: list[tuple[str, str, bool]]) -> list[str]:
    ordered = sorted(ids)  # the tie-break: newest start first, then id
    ordered = sorted(ordered, key=lambda i: loaded[i].start_time, reverse=True)
    for kind, key, desc in reversed(orders):
        present = [i for i in ordered if _order_value(kind, key, truth[i] | {"start_time": loaded[i].start_time})
                   is not None]
        missing = [i for i in ordered if i not in set(present)]
        present = sorted(present, key=lambda i: _order_value(kind, key, truth[i]), reverse=desc)
        ordered = present + missing
    return ordered


def test_search_matches_a_brute_force_filter(store):
    rng = random.Random(20261201)
    truth = _make_runs(rng)
    loaded = {r.id: r for r in mloop.search_runs(experiment="search")}
    assert set(loaded) == set(truth)
    for run_id, r in truth.items():  # what the store loaded is what was logged
        got = loaded[run_id]
        assert got.params == r["params"] and got.tags == r["tags"] and got.status == r["status"]
        assert {k: (None if math.isnan(v) else v) for k, v in got.metrics.items()} == {
            k: (None if math.isnan(v) else v) for k, v in r["metrics"].items()}
    nonempty = 0
    for _ in range(N_FILTERS):
        parts = [_random_clause(rng, truth) for _ in range(rng.choice([1, 1, 2, 3]))]
        text = " and ".join(p[0] for p in parts)
        expected = {i for i, r in truth.items() if all(p[1](r) for p in parts)}
        got = {r.id for r in mloop.search_runs(experiment="search", filter=text)}
        assert got == expected, f"{store.dialect}: {text!r}: extra {len(got - expected)}, missing {len(expected - got)}"
        nonempty += bool(expected)
    assert nonempty > N_FILTERS // 3, "the random filters should mostly match something"

    orderings = [
        [("metrics", "m1", True)], [("metrics", "m1", False)], [("metrics", "m2", False), ("params", "a", True)],
        [("params", "a", False)], [("tags", "team", True), ("metrics", "acc.val", False)],
        [("attributes", "run_name", True)], [("params", "lr.init", False), ("tags", "note.x", False)],
    ]
    for orders in orderings:
        order_by = [f"{_key(k, key)} {'DESC' if d else 'ASC'}" for k, key, d in orders]
        expected = _expected_order(list(truth), truth, loaded, orders)
        got = [r.id for r in mloop.search_runs(experiment="search", order_by=order_by)]
        assert got == expected, f"{store.dialect}: order_by {order_by}"
        limited = [r.id for r in mloop.search_runs(experiment="search", order_by=order_by, limit=7)]
        assert limited == expected[:7]
    filtered = [r.id for r in mloop.search_runs(filter="metrics.m1 > 0", order_by=["metrics.m1 DESC"], limit=5)]
    assert filtered == [i for i in _expected_order(list(truth), truth, loaded, [("metrics", "m1", True)])
                        if _matches(truth[i]["metrics"].get("m1"), ">", 0.0)][:5]


def test_prefix_aliases_quotes_and_case_sensitive_like(store):
    with mloop.start_run(params={"a.b": "Hello"}, tags={"team": "Growth"}) as run:
        run.log_metric("acc.val", 0.9)
    one = [run.id]
    assert [r.id for r in mloop.search_runs(filter="params.`a.b` = 'Hello'")] == one
    assert [r.id for r in mloop.search_runs(filter='param."a.b" LIKE "He%"')] == one
    assert [r.id for r in mloop.search_runs(filter="metric.`acc.val` >= 0.9 AND tag.team ILIKE 'growth'")] == one
    assert mloop.search_runs(filter="tags.team LIKE 'growth'") == []
    assert mloop.search_runs(filter="tags.team LIKE 'g%'") == []
    assert [r.id for r in mloop.search_runs(filter="attributes.status = 'FINISHED'")] == one
    assert [r.id for r in mloop.search_runs(filter=f"attributes.run_id IN ('{run.id}', 'x')")] == one
    assert mloop.search_runs(filter="params.`a.b` > 'hello'") == []  # 'H' < 'h' by code point
    assert [r.id for r in mloop.search_runs(filter=f"attributes.start_time >= {run.start_time} and "
                                             f"attributes.created <= {run.start_time} and attributes.user_id != ''")] == one
    assert mloop.search_runs(filter=f"attributes.end_time < {run.start_time}") == []


@pytest.mark.parametrize(("text", "token"), [
    ("metrics.auc >> 1", "'>'"),
    ("metrics.auc = 'high'", "'high'"),
    ("foo.bar = 1", "'foo'"),
    ("auc > 1", "'auc'"),
    ("params.C = 1", "'1'"),
    ("attributes.nope = 'x'", "'nope'"),
    ("metrics.a > 1 or metrics.b < 2", "'OR'"),
    ("metrics.a ~ 1", "'~'"),
    ("metrics.a LIKE '1%'", "LIKE"),
    ("metrics.a > ", "end"),
    ("metrics.a", "operator"),
    ("metrics.a > 1 and", "end"),
    ("params.a IN ('1', ", "end"),
    ("params.a IN '1'", "'1'"),
    ("metrics.a > 1 metrics.b > 2", "'metrics.b'"),
])
def test_bad_filters_name_the_token(text, token):
    with pytest.raises(InvalidInput) as info:
        mloop.search_runs(filter=text)
    message = str(info.value)
    assert token.lower() in message.lower() and "\n" not in message, message


@pytest.mark.parametrize(("order_by", "token"), [
    (["metrics.auc DOWN"], "'DOWN'"), (["auc"], "'auc'"), (["attributes.nope"], "'nope'"),
    (["metrics.a DESC x"], "'x'"),
])
def test_bad_order_by_names_the_token(order_by, token):
    with pytest.raises(InvalidInput, match=token):
        mloop.search_runs(order_by=order_by)


def test_bad_limit_and_unknown_experiment(store):
    with pytest.raises(InvalidInput, match="limit"):
        mloop.search_runs(limit=0)
    with pytest.raises(mloop.errors.NotFound, match="'ghost'"):
        mloop.search_runs(experiment="ghost")


def test_search_is_compiled_to_a_fixed_number_of_statements(store):
    statements: list[str] = []
    engines = {store._read, store._write}

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def create(n: int) -> None:
        for i in range(n):
            with mloop.start_run(experiment="sql", params={"p": str(i % 3)}, tags={"t": "x"}) as run:
                run.log_metrics({"auc": i / 100, "loss": 1 - i / 100})
        get_writer(store).flush()

    def search() -> tuple[int, int]:
        statements.clear()
        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        try:
            found = mloop.search_runs(experiment="sql", filter="metrics.auc >= 0 and params.p != 'none'",
                                      order_by=["metrics.loss DESC"])
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", count)
        return len(found), len([s for s in statements if s.lstrip().upper().startswith("SELECT")])

    create(5)
    small = search()
    create(120)
    large = search()
    assert small[0] == 5 and large[0] == 125
    assert small[1] == large[1] <= 8, (small, large)
    filtering = [s for s in statements if "latest_metrics" in s and "EXISTS" in s.upper()]
    assert filtering, "the filter should be an EXISTS over latest_metrics in SQL"
