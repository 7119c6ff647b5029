"""A seeded, time-stamped, churn-like dataset with a knob that injects drift over time.

    >>> from mloop.demo.data import generate_churn
    >>> df = generate_churn(1000, seed=1)
    >>> sorted(df.columns)[:3]
    ['age', 'churned', 'contract']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "age", "contract", "payment_method", "region"]
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "age"]
CATEGORICAL = ["contract", "payment_method", "region"]
TARGET = "churned"
_CONTRACTS = np.array(["month-to-month", "one-year", "two-year"])
_PAYMENTS = np.array(["card", "bank-transfer", "electronic-check", "mailed-check"])
_REGIONS = np.array(["north", "south", "east", "west"])


def generate_churn(
    n: int,
    *,
    seed: int = 0,
    start: str = "2026-01-01",
    days: int = 30,
    drift: float = 0.0,
    null_rate: float = 0.01,
) -> pd.DataFrame:
    """`n` customers with an `event_time` spread over `days` from `start`, a `customer_id`, features
    and a binary `churned` target. `drift` in [0, 1] moves the data (and the concept) as time passes:
    charges rise, month-to-month contracts become common and support calls matter more.
    """
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.uniform(0, days * 86400, n))
    event_time = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(offsets, unit="s")
    progress = offsets / max(days * 86400, 1) * drift  # 0 at start, `drift` at the end

    tenure = rng.gamma(2.0, 12.0, n).round().astype("int64")
    charges = rng.normal(65 + 25 * progress, 18, n).clip(10, 200).round(2)
    calls = rng.poisson(1.2 + 1.5 * progress, n).astype("int64")
    age = rng.normal(45, 14, n).clip(18, 95).round(1)
    p_m2m = 0.45 + 0.35 * progress
    u = rng.uniform(size=n)
    contract = np.where(u < p_m2m, _CONTRACTS[0], np.where(u < p_m2m + (1 - p_m2m) / 2, _CONTRACTS[1], _CONTRACTS[2]))
    payment = _PAYMENTS[rng.integers(0, len(_PAYMENTS), n)]
    region = _REGIONS[rng.choice(len(_REGIONS), n, p=[0.3, 0.3, 0.2, 0.2])]

    logit = (
        -1.2
        - 0.045 * tenure
        + 0.028 * (charges - 65)
        + (0.35 + 0.5 * progress) * calls
        + np.select([contract == _CONTRACTS[0], contract == _CONTRACTS[1]], [1.3, 0.1], -0.9)
        + 0.4 * (payment == "electronic-check")
        - 0.004 * (age - 45)
    )
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype("int64")

    df = pd.DataFrame({
        "customer_id": np.arange(n, dtype="int64") + seed * 10_000_000,
        "event_time": event_time,
        "tenure_months": tenure,
        "monthly_charges": charges,
        "support_calls": calls,
        "age": age,
        "contract": contract,
        "payment_method": payment,
        "region": region,
        TARGET: churned,
    })
    if null_rate > 0:
        df.loc[rng.uniform(size=n) < null_rate, "age"] = np.nan
    return df
