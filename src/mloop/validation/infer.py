"""Infer a suite from a reference (a frame, a path, a DatasetVersion or its Profile).

Rules (every inferred expectation has `mostly=1.0`):
- a `dtype` per column (which also fails when the column is missing);
- `max_nulls`: 0 for a column without nulls in the reference, else the reference share widened by
  `margin` (relative) plus three binomial standard errors at the reference size, so that an
  ordinary batch with the same null process passes;
- `between` for numeric columns: [min, max] widened by `margin` x (max - min) on each side;
- `no_unseen_categories` for string, categorical and boolean columns whose exact value counts
  the profile holds (at most 1,000 distinct values);
- `unique` for integer or string columns that are all distinct with at least 1,000 rows; such a
  column is an identifier, so it gets no range or statistics (a new batch brings new ids);
- at severity `warn` (a daily batch of another size or a modest shift does not fail): `row_count`
  within rows x (1 ± margin), and for numeric columns the mean within ± margin x std, the std
  within std x (1 ± margin) and the 5%/50%/95% quantiles within ± margin x std.
"""

from __future__ import annotations

import math
from typing import Any

from mloop.errors import InvalidInput
from mloop.validation import expectations as E
from mloop.validation.suite import Suite

UNIQUE_MIN_ROWS = 1_000
QUANTILES = ("0.05", "0.5", "0.95")


def reference_profile(reference: Any) -> dict[str, Any]:
    """The profile dict of `reference` (Profile, profile dict, DatasetVersion, frame or path)."""
    if isinstance(reference, dict) and "columns" in reference and "rows" in reference:
        return reference
    if hasattr(reference, "to_dict") and hasattr(reference, "columns") and hasattr(reference, "rows") \
            and type(reference).__name__ == "Profile":
        return reference.to_dict()
    prof = getattr(reference, "profile", None)
    if prof is not None and not callable(prof):  # a DatasetVersion
        return reference_profile(prof)
    from mloop.data import profile

    return profile(reference).to_dict()


def infer_suite(reference: Any, margin: float = 0.1, *, name: str | None = None) -> Suite:
    """A suite the reference passes, built from its profile; see the module docstring for the rules.

        >>> from mloop.demo.data import generate_churn
        >>> suite = infer_suite(generate_churn(2000, seed=1))
        >>> suite.validate(generate_churn(2000, seed=2)).ok
        True
    """
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= 10:
        raise InvalidInput(f"margin must be a number in [0, 10], got {margin!r}")
    prof = reference_profile(reference)
    rows = int(prof["rows"])
    exps: list[E.Expectation] = []
    for column, c in prof["columns"].items():
        kind, dtype = c["kind"], c["dtype"]
        exps.append(E.Dtype(column=column, dtype=_dtype_name(dtype)))
        exps.append(E.MaxNulls(column=column, fraction=_null_limit(c["nulls"], rows, margin)))
        identifier = bool(c.get("unique")) and rows >= UNIQUE_MIN_ROWS and (_is_integer(dtype) or kind == "string")
        if kind == "numeric" and not identifier and c.get("min") is not None and c.get("max") is not None:
            lo, hi = float(c["min"]), float(c["max"])
            pad = margin * (hi - lo)
            exps.append(E.Between(column=column, min=_tidy(lo - pad, "down"), max=_tidy(hi + pad, "up")))
        if kind in ("string", "categorical", "boolean") and c.get("value_counts") is not None:
            values = [_typed(k, kind) for k in c["value_counts"]]
            exps.append(E.NoUnseenCategories(column=column, values=sorted(values, key=lambda v: (str(type(v)), v))))
        if identifier:
            exps.append(E.Unique(column=column))
    exps.append(E.RowCount(min=math.floor(round(rows * (1 - margin), 6)), max=math.ceil(round(rows * (1 + margin), 6)),
                           severity="warn"))
    for column, c in prof["columns"].items():
        if c["kind"] != "numeric" or c.get("mean") is None or (
                c.get("unique") and rows >= UNIQUE_MIN_ROWS and _is_integer(c["dtype"])):
            continue
        std = float(c.get("std") or 0.0)
        mean = float(c["mean"])
        exps.append(E.Mean(column=column, min=_tidy(mean - margin * std, "down"),
                           max=_tidy(mean + margin * std, "up"),
                           severity="warn"))
        if c.get("std") is not None:
            exps.append(E.Std(column=column, min=_tidy(std * (1 - margin), "down"),
                              max=_tidy(std * (1 + margin), "up"),
                              severity="warn"))
        for qk in QUANTILES:
            value = (c.get("quantiles") or {}).get(qk)
            if value is not None:
                exps.append(E.Quantile(column=column, q=float(qk), min=_tidy(value - margin * std, "down"),
                                       max=_tidy(value + margin * std, "up"), severity="warn"))
    return Suite(exps, name=name, meta={"inferred": {"margin": margin, "rows": rows}})


def _null_limit(nulls: int, rows: int, margin: float) -> float:
    if nulls == 0 or rows == 0:
        return 0.0
    share = nulls / rows
    return min(1.0, _tidy(share * (1 + margin) + 3 * math.sqrt(share * (1 - share) / rows), "up"))


def _tidy(value: float, direction: str = "near") -> float:
    """Round to 6 significant digits so YAML stays readable; `down`/`up` never round toward the data."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    digits = 5 - int(math.floor(math.log10(abs(value))))
    scale = 10.0 ** digits
    if direction == "down":
        out = math.floor(value * scale) / scale
        return float(min(out, value))
    if direction == "up":
        out = math.ceil(value * scale) / scale
        return float(max(out, value))
    return float(round(value, digits))


def _typed(key: str, kind: str) -> Any:
    if kind == "boolean":
        return {"True": True, "False": False, "true": True, "false": False}.get(key, key)
    return key


def _is_integer(dtype: str) -> bool:
    return dtype.startswith(("int", "uint"))


def _dtype_name(dtype: str) -> str:
    """Normalised name for a profile's arrow type string (see engine.normalise_dtype)."""
    if dtype in ("string", "large_string", "string_view", "utf8", "large_utf8"):
        return "string"
    if dtype.startswith("dictionary<"):
        inner = dtype.split("values=", 1)[1].split(",", 1)[0]
        return _dtype_name(inner)
    if dtype.startswith("timestamp["):
        tz = [p.split("=", 1)[1].rstrip("]") for p in dtype[10:].split(",") if "tz=" in p]
        return f"timestamp[tz={tz[0].strip()}]" if tz else "timestamp"
    return dtype
