"""Fixtures for the model-server tests (helpers live in serving_helpers.py)."""

from __future__ import annotations

import pytest
from serving_helpers import churn_frame, register


@pytest.fixture
def churn_df():
    return churn_frame(400)


@pytest.fixture
def churn_model(churn_df):
    """A registered StandardScaler+OneHot+LogisticRegression pipeline `churn/1` (alias champion)."""
    return register("churn", churn_df, alias="champion")
