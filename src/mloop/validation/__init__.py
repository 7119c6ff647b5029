"""Data validation: expectations, suites inferred from a reference, vectorised checks, reports.

    >>> import mloop
    >>> suite = mloop.validation.infer_suite(reference_df)          # doctest: +SKIP
    >>> result = suite.validate("data/batch.parquet")                # doctest: +SKIP
    >>> result.ok, result.failed                                     # doctest: +SKIP

Every input (pandas, polars, pyarrow, parquet/csv paths) runs through one DuckDB engine, so the
answers are the same whatever the input. Suites round-trip through YAML, are versioned in the
metadata store and can be attached to a dataset name: then every `mloop.data.add` of that name
validates first (this module registers a check provider with `mloop.data` on import).
"""

from __future__ import annotations

from mloop.validation import expectations
from mloop.validation.expectations import (
    Between,
    ColumnPair,
    ColumnPresent,
    Custom,
    Dtype,
    Expectation,
    InSet,
    LengthBetween,
    MaxNulls,
    Mean,
    NoUnseenCategories,
    Quantile,
    Regex,
    RowCount,
    Std,
    Unique,
    custom,
    not_null,
)
from mloop.validation.infer import infer_suite
from mloop.validation.results import ExpectationResult, ValidationResult
from mloop.validation.storage import (
    attach,
    attached_suite,
    check_dataset,
    detach,
    get_suite,
    list_suites,
    save_suite,
)
from mloop.validation.suite import Suite

__all__ = [
    "attach", "attached_suite", "check_dataset", "detach", "get_suite", "list_suites", "save_suite",
    "Between", "ColumnPair", "ColumnPresent", "Custom", "Dtype", "Expectation", "ExpectationResult", "InSet",
    "LengthBetween", "MaxNulls", "Mean", "NoUnseenCategories", "Quantile", "Regex", "RowCount", "Std", "Suite",
    "Unique", "ValidationResult", "custom", "expectations", "infer_suite", "not_null",
]


def _register_with_data() -> None:
    """Become a check provider of `mloop.data` (if the data room offers the hook)."""
    try:
        from mloop import data
    except ImportError:  # pragma: no cover - data room absent
        return
    register = getattr(data, "register_check_provider", None)
    if register is not None:
        register(check_dataset)


_register_with_data()
