"""`mloop demo --quick` end to end in a fresh folder, and the churn generator the demo and tests use."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from mloop.demo.data import CATEGORICAL, FEATURES, NUMERIC, TARGET, generate_churn
from support import run_cli


def test_demo_quick_runs_the_loop_and_prints_the_best_run(tmp_path, mloop_home):
    proc = run_cli("demo", "--quick", cwd=tmp_path, env={"COLUMNS": "160"}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = re.search(r"best run: (\S+) \(([0-9a-f]{32})\) auc=([0-9.]+)", proc.stdout)
    assert found, proc.stdout[-3000:]
    name, run_id, auc = found.group(1), found.group(2), float(found.group(3))
    assert "demo finished" in proc.stdout

    import mloop

    best = mloop.get_run(run_id)
    assert (best.name, best.status) == (name, "FINISHED")
    grid = mloop.search_runs(experiment="demo-churn", filter="tags.stage = 'grid'")
    assert len(grid) >= 4
    assert best.metrics["auc"] == pytest.approx(max(r.metrics["auc"] for r in grid))
    assert auc == pytest.approx(best.metrics["auc"], abs=1e-4)
    assert 0.6 < auc < 1.0  # the target is learnable, not leaked
    assert len(mloop.metric_history(run_id, "valid_auc")) == 4


def test_generator_is_seeded_and_deterministic():
    a = generate_churn(800, seed=3)
    pd.testing.assert_frame_equal(a, generate_churn(800, seed=3))
    assert not a[NUMERIC].equals(generate_churn(800, seed=4)[NUMERIC])
    assert list(a.columns) == ["customer_id", "event_time", *FEATURES, TARGET]
    assert a["customer_id"].is_unique


def test_generator_shape_types_and_time_span():
    df = generate_churn(2000, seed=5, start="2026-03-01", days=10)
    assert len(df) == 2000
    assert str(df["event_time"].dt.tz) == "UTC" and df["event_time"].is_monotonic_increasing
    assert df["event_time"].min() >= pd.Timestamp("2026-03-01", tz="UTC")
    assert df["event_time"].max() <= pd.Timestamp("2026-03-11", tz="UTC")
    for col in CATEGORICAL:
        assert pd.api.types.is_string_dtype(df[col]) and df[col].nunique() >= 3
    assert set(df[TARGET].unique()) == {0, 1}
    assert 0.0 < df["age"].isna().mean() < 0.03  # a few nulls for validation to find
    assert df.drop(columns="age").notna().all().all()


def test_target_rate_is_plausible():
    rate = generate_churn(5000, seed=11)[TARGET].mean()
    assert 0.15 < rate < 0.40


def _early_late(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    third = len(df) // 3
    return df.iloc[:third], df.iloc[-third:]


def test_drift_knob_moves_the_distribution_over_time():
    steady_early, steady_late = _early_late(generate_churn(6000, seed=1, drift=0.0))
    early, late = _early_late(generate_churn(6000, seed=1, drift=1.0))
    # without drift the first and last thirds agree (standard error of the mean charge is ~0.4)
    assert abs(steady_late["monthly_charges"].mean() - steady_early["monthly_charges"].mean()) < 2.5
    assert abs(steady_late["support_calls"].mean() - steady_early["support_calls"].mean()) < 0.2
    # with drift, charges rise, support calls rise and month-to-month contracts become common
    assert late["monthly_charges"].mean() - early["monthly_charges"].mean() > 10
    assert late["support_calls"].mean() - early["support_calls"].mean() > 0.6
    m2m = lambda d: (d["contract"] == "month-to-month").mean()  # noqa: E731
    assert m2m(late) - m2m(early) > 0.15
    # ... and the concept moves with it: churn rises over time
    assert late[TARGET].mean() - early[TARGET].mean() > 0.15
    assert abs(steady_late[TARGET].mean() - steady_early[TARGET].mean()) < 0.05
