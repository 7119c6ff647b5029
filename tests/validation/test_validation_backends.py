"""The same suite gives the same results from pandas, polars, pyarrow, a streamed parquet file
(several row groups), a folder of parquet files and (for what csv keeps) a csv file."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop.validation as V

N = 3_000


def wide_y(df):
    return (df["y"] > -2.5) | df["y"].isna()


@pytest.fixture(scope="module")
def table() -> pa.Table:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, N)
    x_mask = rng.uniform(size=N) < 0.05
    x_nan = rng.uniform(size=N) < 0.05
    x = x.astype(object)
    x[x_nan] = float("nan")  # NaN (not null) in arrow and polars
    x[x_mask] = None
    cats = rng.choice(["red", "green", "blue", "pink"], N, p=[0.4, 0.4, 0.19, 0.01]).astype(object)
    cats[rng.uniform(size=N) < 0.03] = None
    words = rng.choice(["ab", "abc", "b1", "zz-9", ""], N).astype(object)
    words[::97] = None
    ids = np.arange(N, dtype="int64")
    ids[[10, 2000]] = 7  # two duplicates of id 7
    return pa.table({
        "id": pa.array(ids),
        "x": pa.array(list(x), type=pa.float64(), from_pandas=False),
        "y": pa.array(rng.normal(0, 1, N)),
        "n": pa.array(rng.integers(0, 50, N)),
        "cat": pa.array(list(cats)).dictionary_encode(),
        "word": pa.array(list(words), type=pa.string()),
        "flag": pa.array(rng.uniform(size=N) < 0.5),
    })


SUITE = V.Suite([
    V.Dtype(column="x", dtype="double"), V.Dtype(column="cat", dtype="string"), V.Dtype(column="n", dtype="int64"),
    V.not_null("x"), V.MaxNulls(column="cat", fraction=0.1), V.not_null("word"),
    V.Between(column="x", min=-2, max=2), V.Between(column="n", min=0, max=40, max_inclusive=False, mostly=0.5),
    V.InSet(column="cat", values=["red", "green", "blue"]), V.NoUnseenCategories(column="word", values=["ab", "abc"]),
    V.InSet(column="flag", values=[True]),
    V.Unique(column="id"), V.Unique(columns=["n", "word"]),
    V.Regex(column="word", pattern=r"[a-z]+\d?"), V.LengthBetween(column="word", min=1, max=3),
    V.RowCount(min=N, max=N), V.Mean(column="x", min=-0.1, max=0.1), V.Std(column="y", min=0.9, max=1.1),
    V.Quantile(column="x", q=0.9, min=1, max=1.5), V.ColumnPair(a="x", b="y", op="<"),
    V.custom(wide_y), V.Between(column="absent", min=0),
])


def normalised(result: V.ValidationResult) -> list[dict]:
    out = []
    for r in result.results:
        d = r.to_dict()
        d.pop("description")
        out.append(d)
    return out


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], float) and isinstance(y[key], float):
                assert math.isclose(x[key], y[key], rel_tol=1e-9, abs_tol=1e-12), (x["name"], key, x[key], y[key])
            else:
                assert x[key] == y[key], (x["name"], key, x[key], y[key])


@pytest.fixture(scope="module")
def reference(table):
    return normalised(SUITE.validate(table))


def test_reference_answers_are_right(table, reference):
    by = {r["name"]: r for r in reference}
    x = table["x"].to_numpy(zero_copy_only=False)
    x = x[~np.isnan(x.astype(float))]  # nulls came back as NaN
    assert by["not_null:x"]["failing_rows"] == N - len(x)
    assert by["between:x"]["checked_rows"] == len(x)
    assert by["between:x"]["failing_rows"] == int(((x < -2) | (x > 2)).sum())
    assert by["unique:id"]["failing_rows"] == 3 and [e["row"] for e in by["unique:id"]["examples"]] == [7, 10, 2000]
    assert by["mean:x"]["observed"] == pytest.approx(x.mean())
    assert by["quantile:x:0.9"]["observed"] == pytest.approx(np.quantile(x, 0.9))
    assert by["in_set:cat"]["observed"] == ["pink"]
    assert not by["between:absent"]["passed"]


def test_pandas_gives_the_same_results(table, reference):
    assert_same(normalised(SUITE.validate(table.to_pandas())), reference)


def test_polars_gives_the_same_results(table, reference):
    pl = pytest.importorskip("polars")
    frame = pl.from_arrow(table)
    assert frame["x"].is_nan().sum() > 0  # NaN stays NaN in polars: it must still count as null
    assert_same(normalised(SUITE.validate(frame)), reference)


def test_streamed_parquet_gives_the_same_results(table, reference, tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=500)
    assert pq.ParquetFile(path).metadata.num_row_groups == 6
    assert_same(normalised(SUITE.validate(str(path))), reference)
    result = SUITE.validate(path)
    assert list(result.failures("unique:id")["row"]) == [7, 10, 2000]


def test_folder_of_parquet_files_keeps_row_numbers(table, reference, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table.slice(0, 1000), folder / "part-0.parquet")
    pq.write_table(table.slice(1000), folder / "part-1.parquet")
    assert_same(normalised(SUITE.validate(folder)), reference)


def test_csv_agrees_on_what_csv_keeps(table, tmp_path):
    plain = table.drop_columns(["cat"]).to_pandas()
    path = tmp_path / "t.csv"
    plain.to_csv(path, index=False)
    suite = V.Suite([V.not_null("x"), V.Between(column="x", min=-2, max=2), V.Unique(column="id"),
                     V.RowCount(min=N, max=N), V.Between(column="n", min=0, max=40)])
    assert_same(normalised(suite.validate(str(path))), normalised(suite.validate(plain)))


def test_unreadable_inputs_are_invalid_input(tmp_path):
    from mloop.errors import InvalidInput

    with pytest.raises(InvalidInput, match="no such file"):
        SUITE.validate(str(tmp_path / "missing.parquet"))
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="cannot read"):
        SUITE.validate(str(broken))
    with pytest.raises(InvalidInput, match="cannot validate"):
        SUITE.validate(42)


def test_datetime_bounds_agree(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=10, freq="D", tz="UTC"),
                       "d": pd.date_range("2026-01-01", periods=10, freq="D")})
    df.loc[3, "t"] = pd.NaT
    suite = V.Suite([V.Between(column="t", min="2026-01-02", max="2026-01-08T00:00:00+00:00"),
                     V.Between(column="d", max="2026-01-05"), V.not_null("t"),
                     V.Dtype(column="t", dtype="timestamp[tz=UTC]"), V.Dtype(column="d", dtype="datetime")])
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    memory, streamed = normalised(suite.validate(df)), normalised(suite.validate(str(path)))
    assert_same(memory, streamed)
    by = {r["name"]: r for r in memory}
    assert by["between:t"]["failing_rows"] == 3 and by["between:t"]["checked_rows"] == 9  # rows 0, 8, 9
    assert [e["row"] for e in by["between:t"]["examples"]] == [0, 8, 9]
    assert by["between:d"]["failing_rows"] == 5
    assert by["not_null:t"]["failing_rows"] == 1
    assert by["dtype:t"]["passed"] and by["dtype:d"]["passed"]


def test_polars_categorical_and_record_batch(table, reference):
    pl = pytest.importorskip("polars")
    frame = pl.from_arrow(table).with_columns(pl.col("word").cast(pl.Categorical))
    result = normalised(SUITE.validate(frame))
    assert_same(result, reference)
    batch = table.combine_chunks().to_batches()[0]
    assert_same(normalised(SUITE.validate(batch)), reference)


def test_failures_agree_between_memory_and_parquet(table, tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=700)
    memory, streamed = SUITE.validate(table), SUITE.validate(path)
    for name in ("between:x", "in_set:cat", "regex:word", "unique:n,word", "custom:wide_y", "not_null:x"):
        a, b = memory.failures(name), streamed.failures(name)
        assert list(a["row"]) == list(b["row"]), name
        assert len(a) == memory[name].failing_rows, name
