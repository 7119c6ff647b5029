"""`mloop.data.profile` against pandas/numpy computed independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mloop.data.profile import profile, sample_indices
from mloop.errors import InvalidInput, NotFound

QS = ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99")


def _frame(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.choice(n, 40, replace=False)] = np.nan
    return pd.DataFrame({
        "id": np.arange(n),
        "x": x,
        "k": rng.integers(0, 7, n),
        "city": rng.choice(["oslo", "rome", "lima", None], n),
        "flag": rng.random(n) > 0.3,
        "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        "cat": pd.Categorical(rng.choice(["a", "b", "c"], n)),
        "text": [f"t{i % 1500}" for i in range(n)],
    })


def _check_numeric(col: dict, s: pd.Series) -> None:
    v = s.dropna().astype(float)
    assert col["kind"] == "numeric"
    assert col["nulls"] == int(s.isna().sum())
    assert col["distinct"] == v.nunique()
    assert col["min"] == pytest.approx(v.min()) and col["max"] == pytest.approx(v.max())
    assert col["mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert col["std"] == pytest.approx(v.std(), rel=1e-9)
    for q in QS:
        assert col["quantiles"][q] == pytest.approx(v.quantile(float(q)), rel=1e-12, abs=1e-12)
    edges = np.quantile(v.to_numpy(), np.linspace(0, 1, 11))
    assert col["histogram"]["edges"] == pytest.approx(list(edges))
    expected, _ = np.histogram(v.to_numpy(), bins=edges)
    assert col["histogram"]["counts"] == list(expected)
    assert sum(col["histogram"]["counts"]) == len(v)


def test_profile_matches_pandas():
    df = _frame()
    p = profile(df)
    d = p.to_dict()
    assert d["schema_version"] == 1 and d["rows"] == len(df) == p.rows
    assert [c["name"] for c in d["schema"]] == list(df.columns)
    assert d["schema"][0]["dtype"] == "int64" and d["columns"]["x"]["dtype"] == "double"
    cols = p.columns
    for name in ("id", "x", "k"):
        _check_numeric(cols[name], df[name])
    assert cols["id"]["unique"] is True and cols["x"]["unique"] is False
    # value counts: exact for <= 1000 distinct, keyed by str(value)
    assert cols["k"]["value_counts"] == {str(k): int(v) for k, v in df["k"].value_counts().items()}
    assert cols["city"]["kind"] == "string"
    assert cols["city"]["nulls"] == int(df["city"].isna().sum())
    assert cols["city"]["value_counts"] == df["city"].value_counts().to_dict()
    assert cols["city"]["min"] == df["city"].dropna().min() and cols["city"]["max"] == df["city"].dropna().max()
    assert cols["flag"]["kind"] == "boolean"
    assert cols["flag"]["value_counts"] == {str(k): int(v) for k, v in df["flag"].value_counts().items()}
    assert cols["when"]["kind"] == "datetime"
    assert pd.Timestamp(cols["when"]["min"]) == df["when"].min()
    assert pd.Timestamp(cols["when"]["max"]) == df["when"].max()
    assert cols["cat"]["kind"] == "categorical"
    assert cols["cat"]["value_counts"] == {str(k): int(v) for k, v in df["cat"].value_counts().items()}
    # high cardinality: 1500 distinct values > 1000
    text = cols["text"]
    assert text["distinct"] == 1500 and text["high_cardinality"] is True and text["value_counts"] is None
    vc = df["text"].value_counts()
    assert len(text["top_values"]) == 20
    assert all(count == vc[value] for value, count in text["top_values"])
    assert text["top_values"][0][1] == vc.max()
    # the unique id column's top values are 20 values each seen once
    assert [c for _, c in cols["id"]["top_values"]] == [1] * 20
    assert d["sample"] == {"rows": len(df), "seed": 0, "digest": None}
    pd.testing.assert_frame_equal(p.sample(), df, check_categorical=False)


def test_nan_is_null_and_unique_is_exact():
    df = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [1, 2, 3], "c": [1, 1, 2], "s": ["x", "y", None]})
    cols = profile(df).columns
    assert cols["a"]["nulls"] == 1 and cols["a"]["distinct"] == 2 and cols["a"]["unique"] is False
    assert cols["b"]["unique"] is True
    assert cols["c"]["unique"] is False
    assert cols["s"]["unique"] is False and cols["s"]["distinct"] == 2


def test_polars_arrow_parquet_and_csv_agree(tmp_path):
    pl = pytest.importorskip("polars")
    df = _frame(800).drop(columns=["cat", "when"])
    base = profile(df).to_dict()["columns"]
    arrow = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(arrow, tmp_path / "t.parquet")
    df.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "parts").mkdir()
    pq.write_table(arrow.slice(0, 300), tmp_path / "parts" / "a.parquet")
    pq.write_table(arrow.slice(300), tmp_path / "parts" / "b.parquet")
    for other in (profile(arrow), profile(pl.from_pandas(df)), profile(tmp_path / "t.parquet"),
                  profile(str(tmp_path / "parts")), profile(tmp_path / "t.csv")):
        cols = other.to_dict()["columns"]
        assert other.rows == len(df)
        for name in ("id", "x", "k"):
            for key in ("nulls", "distinct", "unique", "mean", "quantiles", "value_counts"):
                assert cols[name][key] == pytest.approx(base[name][key]), (name, key)
            assert cols[name]["histogram"]["counts"] == base[name]["histogram"]["counts"]
            assert cols[name]["histogram"]["edges"] == pytest.approx(base[name]["histogram"]["edges"])
        assert cols["city"]["value_counts"] == base["city"]["value_counts"]
        assert cols["text"]["top_values"] == base["text"]["top_values"]


def test_large_table_sample_is_seeded_and_streams_from_parquet(tmp_path):
    n = 250_000
    df = pd.DataFrame({"i": np.arange(n), "v": np.arange(n) % 97})
    p = profile(df)
    s = p.sample()
    assert len(s) == 100_000 and p.to_dict()["sample"]["rows"] == 100_000
    assert s["i"].is_unique and s["i"].is_monotonic_increasing
    np.testing.assert_array_equal(s["i"].to_numpy(), sample_indices(n))
    assert p.columns["v"]["value_counts"] == {str(k): int(c) for k, c in df["v"].value_counts().items()}
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "big.parquet", row_group_size=30_000)
    from_file = profile(tmp_path / "big.parquet")
    pd.testing.assert_frame_equal(from_file.sample(), s)
    assert from_file.columns["i"]["quantiles"] == p.columns["i"]["quantiles"]


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(NotFound, match="nope.parquet"):
        profile(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really a parquet file")
    with pytest.raises(InvalidInput, match="bad.parquet"):
        profile(bad)
    with pytest.raises(InvalidInput, match="expected a pandas"):
        profile([1, 2, 3])
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="x.txt"):
        profile(tmp_path / "x.txt")


def test_empty_and_all_null_columns():
    df = pd.DataFrame({"a": pd.Series([np.nan, np.nan]), "b": pd.Series(["x", "y"])})
    cols = profile(df).columns
    assert cols["a"]["nulls"] == 2 and cols["a"]["distinct"] == 0 and cols["a"]["mean"] is None
    assert cols["a"]["quantiles"] is None and cols["a"]["histogram"] is None
    empty = profile(pd.DataFrame({"a": pd.Series([], dtype="float64")}))
    assert empty.rows == 0 and empty.columns["a"]["nulls"] == 0
