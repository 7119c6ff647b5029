"""Batch scoring: parquet / CSV / folder in, parquet out, equal to in-memory predictions; the CLI;
and bounded memory (4x the rows costs under 1.15x the peak RSS), measured in subprocesses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from support import invoke_cli, run_cli

FEATURES = [f"f{i}" for i in range(20)]


def _model(tmp_path=None):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(500, 20)), columns=FEATURES)
    y = np.where(X.f0 + X.f1 > 0, "yes", "no")
    lr = LogisticRegression().fit(X, y)
    mloop.models.log_model(lr, "scorer", input_example=X.head(), register=True)
    mloop.models.set_alias("scorer", "champion", 1)
    return lr


def _frame(n, seed=1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.normal(size=(n, 20)), columns=FEATURES)
    df.insert(0, "id", np.arange(n))
    return df


def test_predict_batch_matches_in_memory(tmp_path):
    lr = _model()
    df = _frame(2_500)
    df.to_parquet(tmp_path / "in.parquet", row_group_size=700)
    model = mloop.models.load("scorer@champion")
    out = model.predict_batch(tmp_path / "in.parquet", tmp_path / "out.parquet", batch_rows=1000, keep=["id"])
    assert out["rows"] == 2_500
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert list(got.columns) == ["id", "prediction", "proba_no", "proba_yes"]
    np.testing.assert_array_equal(got["id"], df["id"])
    np.testing.assert_array_equal(got["prediction"], lr.predict(df[FEATURES]))
    np.testing.assert_allclose(got[["proba_no", "proba_yes"]].to_numpy(), lr.predict_proba(df[FEATURES]))
    df.to_csv(tmp_path / "in.csv", index=False)
    model.predict_batch(tmp_path / "in.csv", tmp_path / "csv.parquet", batch_rows=999, keep="id")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "csv.parquet"), got)
    (tmp_path / "dir").mkdir()
    df.iloc[:1000].to_parquet(tmp_path / "dir" / "a.parquet")
    df.iloc[1000:].to_parquet(tmp_path / "dir" / "b.parquet")
    model.predict_batch(tmp_path / "dir", tmp_path / "dir.parquet", keep=["id"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dir.parquet").sort_values("id", ignore_index=True), got)
    df.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    model.predict_batch(tmp_path / "empty.parquet", tmp_path / "empty-out.parquet", keep=["id"])
    empty = pd.read_parquet(tmp_path / "empty-out.parquet")
    assert len(empty) == 0 and list(empty.columns) == ["id", "prediction", "proba_no", "proba_yes"]
    for src in ("in.parquet", "in.csv"):
        with pytest.raises(mloop.errors.InvalidInput, match="nope"):
            model.predict_batch(tmp_path / src, tmp_path / "bad.parquet", keep=["nope"])
    assert not (tmp_path / "bad.parquet").exists()


def test_cli_predict_and_models_commands(tracking_uri, tmp_path):
    _model()
    mloop.models.log_model(LogisticRegression().fit(_frame(50)[FEATURES], np.arange(50) % 2), "scorer",
                           input_example=_frame(5)[FEATURES], register=True)
    _frame(300).to_parquet(tmp_path / "in.parquet")
    res = run_cli("predict", "scorer@champion", "--input", str(tmp_path / "in.parquet"), "--output",
                     str(tmp_path / "out.parquet"), "--keep", "id", "--batch-rows", "100", "-q")
    assert res.returncode == 0, res.stderr
    assert "scored 300 rows" in res.stdout and len(pd.read_parquet(tmp_path / "out.parquet")) == 300
    res = invoke_cli("models", "alias", "scorer", "champion", "2", "--reason", "retrained")
    assert res.returncode == 0, res.stderr
    import json

    hist = json.loads(invoke_cli("models", "history", "scorer", "--json").stdout)
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in hist] == [(None, 1, None), (1, 2, "retrained")]
    shown = json.loads(invoke_cli("models", "show", "scorer@champion", "--json").stdout)
    assert shown["version"] == 2 and shown["aliases"] == ["champion"]
    listed = json.loads(invoke_cli("models", "list", "--json").stdout)
    assert [(m["name"], m["versions"]) for m in listed] == [("scorer", 2)]
    res = invoke_cli("models", "show", "scorer@nope")
    assert res.returncode == 2 and "aliases: champion" in res.stderr
    assert invoke_cli("models", "delete", "scorer/1").returncode == 0
    versions = json.loads(invoke_cli("models", "versions", "scorer", "--json").stdout)
    assert [v["version"] for v in versions] == [2]
    assert invoke_cli("models", "restore", "scorer/1").returncode == 0
    found = json.loads(invoke_cli("models", "search", "name = 'scorer' and version = 1", "--json").stdout)
    assert [v["version"] for v in found] == [1]


_MEASURE = """
import resource, sys
from mloop.cli import main
sys.argv = ["mloop", "predict", "scorer@champion", "--input", sys.argv[1], "--output", sys.argv[2],
            "--batch-rows", "10000", "--keep", "id", "-q"]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("MAXRSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _write(path, n):
    writer = None
    rng = np.random.default_rng(7)
    for start in range(0, n, 50_000):
        rows = min(50_000, n - start)
        cols = {"id": pa.array(np.arange(start, start + rows))}
        cols.update({f: pa.array(rng.normal(size=rows)) for f in FEATURES})
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def test_batch_scoring_memory_is_bounded(tmp_path):
    _model()
    n = 250_000
    peaks = {}
    for rows in (n, 4 * n):
        src = tmp_path / f"in-{rows}.parquet"
        _write(src, rows)
        res = subprocess.run([sys.executable, "-c", _MEASURE, str(src), str(tmp_path / f"out-{rows}.parquet")],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        peaks[rows] = int(res.stderr.split("MAXRSS")[-1].split()[0])
        assert pq.ParquetFile(tmp_path / f"out-{rows}.parquet").metadata.num_rows == rows
        src.unlink()
    print("peak RSS (KiB) by rows:", peaks)
    assert peaks[4 * n] < 1.15 * peaks[n], peaks
