"""Each expectation against answers computed by hand on small frames (nulls, NaN vs None, empty
frames, categorical dtypes, missing columns)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mloop.validation as V
from mloop.errors import InvalidInput


def one(exp, data):
    result = V.Suite([exp]).validate(data)
    assert len(result.results) == 1
    return result.results[0]


@pytest.fixture
def frame():
    return pd.DataFrame({
        "x": [1.0, np.nan, 3.0, None, 10.0, -2.0],          # NaN and None are both null
        "s": pd.Series(["ab", "b", None, "zzz", "ab", np.nan], dtype=object),
        "id": [1, 2, 2, 3, 4, 4],
        "y": [2.0, 0.0, 3.0, 1.0, 5.0, 0.0],
    })


def test_max_nulls_counts_nan_and_none(frame):
    r = one(V.not_null("x"), frame)
    assert (r.passed, r.failing_rows, r.checked_rows) == (False, 2, 6)
    assert r.observed == pytest.approx(2 / 6)
    assert [e["row"] for e in r.examples] == [1, 3]
    assert one(V.MaxNulls(column="x", fraction=1 / 3), frame).passed
    assert not one(V.MaxNulls(column="x", fraction=0.33), frame).passed
    r = one(V.not_null("s"), frame)  # None and NaN in an object column
    assert (r.failing_rows, [e["row"] for e in r.examples]) == (2, [2, 5])


def test_between_leaves_nulls_out_of_the_denominator(frame):
    r = one(V.Between(column="x", min=0, max=5), frame)
    # non-null: 1, 3, 10, -2 -> 10 and -2 fail
    assert (r.passed, r.failing_rows, r.checked_rows) == (False, 2, 4)
    assert r.failing_fraction == 0.5
    assert r.observed == [-2.0, 10.0]
    assert r.examples == [{"row": 4, "value": 10.0}, {"row": 5, "value": -2.0}]
    assert one(V.Between(column="x", min=-2, max=10), frame).passed
    r = one(V.Between(column="x", min=-2, max=10, min_inclusive=False, max_inclusive=False), frame)
    assert r.failing_rows == 2
    assert one(V.Between(column="x", min=-5), frame).passed
    assert one(V.Between(column="x", max=3), frame).failing_rows == 1


def test_mostly_counts_non_null_rows(frame):
    # 2 of 4 non-null rows pass: mostly=0.5 passes, 0.51 fails (over 6 rows it would be 4/6)
    assert one(V.Between(column="x", min=0, max=5, mostly=0.5), frame).passed
    r = one(V.Between(column="x", min=0, max=5, mostly=0.51), frame)
    assert not r.passed and "at least 51.00% must pass" in r.message


def test_in_set_and_unseen_categories(frame):
    r = one(V.InSet(column="s", values=["ab", "b"]), frame)
    assert (r.passed, r.failing_rows, r.checked_rows, r.observed) == (False, 1, 4, ["zzz"])
    assert r.examples == [{"row": 3, "value": "zzz"}]
    r = one(V.NoUnseenCategories(column="s", values=["ab"]), frame)
    assert (r.failing_rows, r.observed) == (2, ["b", "zzz"]) or (r.failing_rows, sorted(r.observed)) == (2, ["b", "zzz"])
    assert one(V.InSet(column="id", values=[1, 2, 3, 4]), frame).passed
    assert one(V.InSet(column="id", values=[1, 2]), frame).failing_rows == 3


def test_categorical_dtype_is_compared_by_value():
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", None, "c", "a"], categories=["a", "b", "c", "d"])})
    r = one(V.InSet(column="c", values=["a", "b"]), df)
    assert (r.failing_rows, r.checked_rows, r.examples) == (1, 4, [{"row": 3, "value": "c"}])
    assert one(V.not_null("c"), df).failing_rows == 1
    assert one(V.Dtype(column="c", dtype="string"), df).passed
    assert one(V.Regex(column="c", pattern="[ab]"), df).failing_rows == 1


def test_boolean_in_set():
    df = pd.DataFrame({"b": [True, False, True, None]}, dtype="boolean")
    r = one(V.InSet(column="b", values=[True]), df)
    assert (r.failing_rows, r.checked_rows) == (1, 3)


def test_unique_single_and_several_columns(frame):
    r = one(V.Unique(column="id"), frame)
    # 2 appears twice, 4 twice: four rows fail
    assert (r.failing_rows, r.checked_rows) == (4, 6)
    assert [e["row"] for e in r.examples] == [1, 2, 4, 5]
    r = one(V.Unique(columns=["id", "y"]), frame)
    # pairs: (1,2) (2,0) (2,3) (3,1) (4,5) (4,0): all distinct
    assert r.passed and r.failing_rows == 0
    nulls = pd.DataFrame({"k": [1.0, np.nan, np.nan, 2.0]})  # null keys are left out
    r = one(V.Unique(column="k"), nulls)
    assert (r.passed, r.checked_rows) == (True, 2)
    big = pd.DataFrame({"k": np.r_[np.arange(10_000), [5, 9_999]]})  # dense-int fast path
    r = one(V.Unique(column="k"), big)
    assert (r.failing_rows, r.checked_rows) == (4, 10_002)
    sparse = pd.DataFrame({"k": np.array([1, 10**15, 10**15, -(10**15)])})
    assert one(V.Unique(column="k"), sparse).failing_rows == 2


def test_regex_is_a_full_match_and_re2(frame):
    r = one(V.Regex(column="s", pattern="[a-z]{2}"), frame)
    # non-null: ab, b, zzz, ab -> b and zzz fail (a full match, not a search)
    assert (r.failing_rows, r.checked_rows) == (2, 4)
    assert [e["value"] for e in r.examples] == ["b", "zzz"]
    for bad in ["(?=a)b", "(?<!x)y", r"(a)\1"]:
        with pytest.raises(InvalidInput, match="RE2"):
            V.Regex(column="s", pattern=bad)


def test_length_between(frame):
    r = one(V.LengthBetween(column="s", min=2, max=2), frame)
    assert (r.failing_rows, r.checked_rows, r.observed) == (2, 4, [1, 3])
    assert one(V.LengthBetween(column="s", max=3), frame).passed


def test_row_count_and_statistics(frame):
    assert one(V.RowCount(min=6, max=6), frame).passed
    r = one(V.RowCount(min=7), frame)
    assert not r.passed and r.observed == 6
    values = np.array([1.0, 3.0, 10.0, -2.0])
    r = one(V.Mean(column="x", min=0, max=5), frame)
    assert r.observed == pytest.approx(values.mean()) and r.passed
    r = one(V.Std(column="x", min=0, max=1), frame)
    assert r.observed == pytest.approx(values.std(ddof=1)) and not r.passed
    for qv in (0.0, 0.25, 0.5, 0.9, 1.0):
        r = one(V.Quantile(column="x", q=qv, min=-100, max=100), frame)
        assert r.observed == pytest.approx(np.quantile(values, qv))


def test_column_pair(frame):
    r = one(V.ColumnPair(a="x", b="y", op="<="), frame)
    # both non-null rows: (1,2) ok, (3,3) ok, (10,5) fail, (-2,0) ok
    assert (r.failing_rows, r.checked_rows, [e["row"] for e in r.examples]) == (1, 4, [4])
    assert r.examples[0]["value"] == {"x": 10.0, "y": 5.0}
    assert one(V.ColumnPair(a="x", b="y", op=">"), frame).failing_rows == 3
    assert one(V.ColumnPair(a="id", b="id", op="=="), frame).passed


def positive_y(df):
    return df["y"] > 0


def test_custom_predicate(frame):
    r = one(V.custom(positive_y), frame)
    assert (r.failing_rows, r.checked_rows, [e["row"] for e in r.examples]) == (2, 6, [1, 5])
    r = one(V.custom("test_validation_expectations:positive_y", columns=["y"]), frame)
    assert r.failing_rows == 2
    result = V.Suite([V.custom(positive_y)]).validate(frame)
    assert list(result.failures(result.results[0].name)["row"]) == [1, 5]


def test_dtype_names_and_families(frame):
    assert one(V.Dtype(column="x", dtype="double"), frame).passed
    assert one(V.Dtype(column="x", dtype="numeric"), frame).passed
    assert one(V.Dtype(column="id", dtype="integer"), frame).passed
    r = one(V.Dtype(column="id", dtype="string"), frame)
    assert not r.passed and r.observed == "int64" and "expected string" in r.message
    assert one(V.Dtype(column="s", dtype="string"), frame).passed


def test_missing_column_fails_that_expectation_only(frame):
    result = V.Suite([V.Between(column="nope", min=0), V.not_null("id"), V.ColumnPresent(column="nope")]) \
        .validate(frame)
    first, second, third = result.results
    assert not first.passed and "column 'nope' not found" in first.message and "id" in first.message
    assert second.passed
    assert not third.passed
    assert not result.ok
    assert result.failures(first.name).empty


def test_empty_frame():
    empty = pd.DataFrame({"x": pd.Series([], dtype="float64"), "s": pd.Series([], dtype=object)})
    result = V.Suite([V.not_null("x"), V.Between(column="x", min=0, max=1), V.InSet(column="s", values=["a"]),
                      V.Unique(column="x"), V.RowCount(min=0, max=0), V.Mean(column="x", min=0)]).validate(empty)
    by = {r.type: r for r in result.results}
    assert by["max_nulls"].passed and by["max_nulls"].observed == 0.0
    assert by["between"].passed and by["between"].checked_rows == 0
    assert by["in_set"].passed and by["unique"].passed and by["row_count"].passed
    assert not by["mean"].passed and "not enough non-null values" in by["mean"].message


def test_warn_severity_does_not_fail_the_suite(frame):
    result = V.Suite([V.RowCount(min=100, severity="warn"), V.not_null("id")]).validate(frame)
    assert result.ok and [r.status for r in result.results] == ["warn", "pass"]


def test_failures_returns_every_failing_row(frame):
    result = V.Suite([V.Between(column="x", min=0, max=5), V.Unique(column="id"), V.not_null("x")]).validate(frame)
    rows = result.failures("between:x")
    assert list(rows["row"]) == [4, 5] and list(rows["x"]) == [10.0, -2.0] and list(rows.columns)[:2] == ["row", "x"]
    assert list(result.failures("unique:id")["row"]) == [1, 2, 4, 5]
    assert list(result.failures("not_null:x")["row"]) == [1, 3]


def test_bad_parameters_are_invalid_input():
    with pytest.raises(InvalidInput, match="severity"):
        V.not_null("x", severity="fatal")
    with pytest.raises(InvalidInput, match="mostly"):
        V.Between(column="x", min=0, mostly=1.5)
    with pytest.raises(InvalidInput, match="below min"):
        V.Between(column="x", min=5, max=1)
    with pytest.raises(InvalidInput, match="min or max"):
        V.Between(column="x")
    with pytest.raises(InvalidInput, match="op"):
        V.ColumnPair(a="x", b="y", op="<>")


def test_reports_render(frame):
    result = V.Suite([V.Between(column="x", min=0, max=5), V.not_null("id")]).validate(frame)
    page = result.to_html()
    assert page.startswith("<!DOCTYPE html>") and "between:x" in page and "<script" not in page and "http" not in page
    assert "between:x" in result._repr_html_()
    import json

    data = json.loads(result.to_json())
    assert data["ok"] is False and data["results"][0]["failing_rows"] == 2
    assert V.ValidationResult.from_dict(data).to_dict() == data
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(result)
    assert "between:x" in console.export_text()
    console = Console(record=True, width=200)
    console.print(result.table(only=("fail",)))
    text = console.export_text()
    assert "between:x" in text and "not_null:id" not in text
