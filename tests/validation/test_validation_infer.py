"""Inferred suites follow the issue's rules, pass on their own reference and catch injected faults."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mloop.validation as V
from mloop.demo.data import generate_churn


@pytest.fixture(scope="module")
def reference():
    return generate_churn(3_000, seed=11)


@pytest.fixture(scope="module")
def suite(reference):
    return V.infer_suite(reference, name="churn")


def by_key(suite):
    return {e.key: e for e in suite}


def test_inference_rules(reference, suite):
    exps = by_key(suite)
    assert all(getattr(e, "mostly", 1.0) == 1.0 for e in suite)
    # dtypes for every column
    assert {e.column for e in suite if isinstance(e, V.Dtype)} == set(reference.columns)
    assert exps["dtype:tenure_months"].dtype == "int64" and exps["dtype:contract"].dtype == "string"
    # null rates: 0 where the reference has none, a widened share where it has some
    assert exps["not_null:monthly_charges"].fraction == 0.0
    share = reference["age"].isna().mean()
    assert share > 0 and share * 1.1 <= exps["max_nulls:age"].fraction < share * 1.1 + 0.01
    # ranges: min/max widened by margin x range
    lo, hi = reference["monthly_charges"].min(), reference["monthly_charges"].max()
    between = exps["between:monthly_charges"]
    assert between.min == pytest.approx(lo - 0.1 * (hi - lo), rel=1e-5)
    assert between.max == pytest.approx(hi + 0.1 * (hi - lo), rel=1e-5)
    assert between.min <= lo - 0.1 * (hi - lo) and between.max >= hi + 0.1 * (hi - lo)
    # category sets only for string/categorical/boolean columns, from exact value counts
    assert sorted(exps["no_unseen_categories:region"].values) == sorted(reference["region"].unique())
    assert not any(isinstance(e, V.InSet) and e.column == "support_calls" for e in suite)
    # unique: the all-distinct integer id (>= 1,000 rows), and no range or statistics for it
    assert "unique:customer_id" in exps and "between:customer_id" not in exps and "mean:customer_id" not in exps
    assert not any(isinstance(e, V.Unique) and e.column != "customer_id" for e in suite)
    # row count and statistics at severity warn
    assert exps["row_count"].severity == "warn" and exps["row_count"].min == 2700 and exps["row_count"].max == 3300
    for key in ("mean:age", "std:age", "quantile:age:0.5"):
        assert exps[key].severity == "warn"
    assert all(e.severity == "error" for e in suite if isinstance(e, V.Dtype | V.MaxNulls | V.Between | V.InSet))


def test_inferred_suite_passes_on_its_reference(reference, suite):
    result = suite.validate(reference)
    assert result.ok and not result.warnings, result.summary()


def test_unique_needs_a_thousand_rows():
    small = pd.DataFrame({"id": np.arange(999), "s": [f"k{i}" for i in range(999)]})
    assert not any(isinstance(e, V.Unique) for e in V.infer_suite(small))
    big = pd.DataFrame({"id": np.arange(1000), "s": [f"k{i}" for i in range(1000)], "f": np.arange(1000) / 3})
    uniques = {e.column for e in V.infer_suite(big) if isinstance(e, V.Unique)}
    assert uniques == {"id", "s"}  # not the float column


def test_boolean_and_categorical_sets():
    df = pd.DataFrame({"b": [True, False] * 600, "c": pd.Categorical(["x", "y", "z"] * 400)})
    exps = by_key(V.infer_suite(df))
    assert sorted(exps["no_unseen_categories:b"].values) == [False, True]
    assert sorted(exps["no_unseen_categories:c"].values) == ["x", "y", "z"]
    assert V.infer_suite(df).validate(df).ok


@pytest.mark.parametrize("fault", ["nulls", "out_of_range", "unseen_category", "duplicate_id", "dtype"])
def test_inferred_suite_catches_injected_faults(reference, suite, fault):
    bad = generate_churn(3_000, seed=12)
    if fault == "nulls":
        bad.loc[::10, "monthly_charges"] = np.nan
        expected = "not_null:monthly_charges"
    elif fault == "out_of_range":
        bad.loc[[5, 50], "tenure_months"] = 10_000
        expected = "between:tenure_months"
    elif fault == "unseen_category":
        bad.loc[[3], "contract"] = "lifetime"
        expected = "no_unseen_categories:contract"
    elif fault == "duplicate_id":
        bad.loc[7, "customer_id"] = bad.loc[8, "customer_id"]
        expected = "unique:customer_id"
    else:
        bad["support_calls"] = bad["support_calls"].astype(str)
        expected = "dtype:support_calls"
    result = suite.validate(bad)
    assert not result.ok
    assert expected in {r.name for r in result.failed}, result.summary()
    if fault == "out_of_range":
        assert [e["row"] for e in result[expected].examples] == [5, 50]


def test_fresh_batch_of_another_size_only_warns(reference):
    # margin 0.1 widens [min, max] by 10% of the range, which a long-tailed column (gamma tenure)
    # can exceed in a fresh sample; a batch process picks a wider margin
    suite = V.infer_suite(reference, margin=0.5)
    fresh = generate_churn(1_000, seed=13)
    result = suite.validate(fresh)
    assert result.ok
    assert "row_count" in {r.name for r in result.warnings}


def test_infer_from_profile_dict_and_path(reference, suite, tmp_path):
    import mloop

    prof = mloop.data.profile(reference)
    assert V.infer_suite(prof, name="churn") == suite
    assert V.infer_suite(prof.to_dict(), name="churn") == suite
    path = tmp_path / "ref.parquet"
    reference.to_parquet(path)
    from_file = V.infer_suite(str(path))
    assert from_file.validate(str(path)).ok
    assert len(from_file) == len(suite)


def test_margin_zero_still_passes_its_reference(reference):
    assert V.infer_suite(reference, margin=0).validate(reference).ok
    with pytest.raises(V.expectations.ParamError.__mro__[1]):
        V.infer_suite(reference, margin=-1)
