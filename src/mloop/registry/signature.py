"""Model signatures: input columns (name, dtype, nullable) and outputs, inferred from an input
example and enforced at predict time with MLflow's coercion rules.

Coercion: int -> float always; float -> int only when every value is integral; a wider int from a
narrower one; never str -> number. A missing column or an uncoercible value is an `InvalidInput`
naming the column and the expected type; extra columns are dropped (one warning per model).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

# Names the prediction log uses for its own columns (DESIGN.md, "Prediction log").
RESERVED = ("request_id", "ts", "model", "version", "deployment", "latency_ms", "prediction")
INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_TYPES = ("float16", "float32", "float64")


class ExtraColumnsWarning(UserWarning):
    """Input had columns the model's signature does not name; they were dropped."""


@dataclass(frozen=True)
class Signature:
    """`inputs`: `[{"name", "dtype", "nullable", "shape"}]` in model order; `outputs` likewise."""

    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.inputs]

    def to_dict(self) -> dict:
        return {"inputs": [dict(c) for c in self.inputs], "outputs": [dict(c) for c in self.outputs]}

    @classmethod
    def from_dict(cls, data: dict | None) -> Signature:
        data = data or {}
        return cls(inputs=list(data.get("inputs") or []), outputs=list(data.get("outputs") or []))

    def __bool__(self) -> bool:
        return bool(self.inputs)


def to_pandas(data: Any, names: list[str] | None = None) -> pd.DataFrame:
    """A pandas DataFrame from pandas, polars, pyarrow, a dict, a list of records or a 2-D array."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame().T if data.name is None else data.to_frame()
    module = type(data).__module__.split(".", 1)[0]
    if module == "polars":
        return data.to_pandas()
    if module == "pyarrow":
        return data.to_pandas()
    if isinstance(data, dict):
        if data and all(not isinstance(v, list | tuple) and not hasattr(v, "__len__") or isinstance(v, str)
                        for v in data.values()):
            return pd.DataFrame([data])
        return pd.DataFrame(data)
    if isinstance(data, list):
        return pd.DataFrame.from_records(data) if data and isinstance(data[0], dict) else pd.DataFrame(data, columns=names)
    if module == "numpy":
        import numpy as np

        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if names is not None and arr.shape[1] != len(names):
            raise InvalidInput(f"input array has {arr.shape[1]} columns; the model expects {len(names)} ({names})")
        return pd.DataFrame(arr, columns=names if names is not None else [str(i) for i in range(arr.shape[1])])
    raise InvalidInput(f"cannot use a {type(data).__name__} as model input; pass a pandas, polars or pyarrow table")


# The data room sits above the registry, which never imports it: the top-level package (accessing
# `mloop.models`) installs a loader here, so dataset URIs work wherever the registry takes data.
datasets_loader: Callable[[], Any] | None = None


def datasets_room() -> Any:
    """`mloop.data` if it is loaded or the top-level package can load it, else None."""
    import sys

    room = sys.modules.get("mloop.data")
    if room is None and datasets_loader is not None:
        room = datasets_loader()
    return room


def read_table(data: Any) -> pd.DataFrame:
    """`to_pandas`, also taking a dataset version (anything with `.to_pandas()`) or a dataset URI
    (through `datasets_room()`)."""
    if isinstance(data, str):
        datasets = datasets_room()
        if datasets is None:
            raise InvalidInput(f"{data!r} looks like a dataset URI; pass mloop.data.get({data!r}) or a frame")
        data = datasets.get(data)
    if not isinstance(data, list | dict) and callable(getattr(data, "to_pandas", None)) \
            and type(data).__module__.split(".", 1)[0] not in ("polars", "pyarrow", "pandas"):
        data = data.to_pandas()
    return to_pandas(data)


def dtype_name(col: pd.Series) -> str:
    """The signature dtype of a column: int64, float32, bool, string, category, datetime or object."""
    import pandas as pd

    dt = col.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dt):
        return "bool"
    if pd.api.types.is_integer_dtype(dt):
        return str(dt).lower()
    if pd.api.types.is_float_dtype(dt):
        return str(dt).lower()
    if pd.api.types.is_datetime64_any_dtype(dt):
        return "datetime"
    if pd.api.types.is_string_dtype(dt) and not pd.api.types.is_object_dtype(dt):
        return "string"
    if pd.api.types.is_object_dtype(dt):
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind in ("string", "empty"):
            return "string"
        if kind == "boolean":
            return "bool"
        if kind == "integer":
            return "int64"
        if kind in ("floating", "mixed-integer-float"):
            return "float64"
    return "object"


def infer(example: Any, outputs: list[dict] | None = None) -> Signature:
    """The signature of an input example (a frame of a few rows)."""
    df = to_pandas(example)
    for name in df.columns:
        if not isinstance(name, str):
            raise InvalidInput(f"input column names must be strings, got {name!r}; name the columns of the example")
    nullable = df.isna().any(axis=0).tolist() if len(df.columns) else []  # one pass, not one per column
    inputs = []
    for i, (name, dt) in enumerate(df.dtypes.items()):
        # a plain numpy bool, int or float column names its own dtype; anything else is looked at
        kind = dt.kind if type(dt).__module__ == "numpy" else ""
        dtype = "bool" if kind == "b" else str(dt) if kind in ("i", "u", "f") else dtype_name(df.iloc[:, i])
        inputs.append({"name": name, "dtype": dtype, "nullable": bool(nullable[i]), "shape": [-1]})
    return Signature(inputs=inputs, outputs=outputs or [])


def check_reserved(sig: Signature) -> None:
    """Refuse input columns that clash with the prediction log's own names."""
    for c in sig.inputs:
        if c["name"] in RESERVED or c["name"].startswith("proba_"):
            raise InvalidInput(
                f"input column {c['name']!r} uses a name the prediction log reserves "
                f"({', '.join(RESERVED)}, proba_*); rename it before logging the model"
            )


class Enforcer:
    """Checks and coerces frames against one signature; warns once about dropped extra columns."""

    def __init__(self, sig: Signature, label: str = "model") -> None:
        self.sig = sig
        self.label = label
        self._warned = False
        fixed = set(INT_TYPES) | set(FLOAT_TYPES) | {"bool"}
        dtypes = [c["dtype"] for c in sig.inputs]
        self._exact = dtypes if dtypes and all(d in fixed for d in dtypes) else None

    def __call__(self, data: Any) -> pd.DataFrame:
        df = to_pandas(data, self.sig.names or None)
        if not self.sig:
            return df
        names = self.sig.names
        missing = [c for c in self.sig.inputs if c["name"] not in df.columns]
        if missing:
            wanted = ", ".join(f"{c['name']} ({c['dtype']})" for c in missing)
            raise InvalidInput(f"input is missing column(s) {wanted} that {self.label} needs")
        if len(df.columns) != len(names) or list(df.columns) != names:
            extra = [c for c in df.columns if c not in set(names)]
            if extra and not self._warned:
                self._warned = True
                warnings.warn(f"{self.label}: dropped input column(s) not in its signature: {extra[:20]}",
                              ExtraColumnsWarning, stacklevel=3)
            df = df[names]
        if self._exact is not None and [str(d) for d in df.dtypes] == self._exact:
            return df  # every column already has its numeric or bool dtype: nothing to check per value
        changed: dict[str, Any] = {}
        for spec in self.sig.inputs:
            col = df[spec["name"]]
            new = coerce(col, spec)
            if new is not col:
                changed[spec["name"]] = new
        if changed:
            df = df.assign(**changed)
        return df


def coerce(col: pd.Series, spec: dict) -> pd.Series:
    """The column coerced to the spec's dtype (the same object when it already fits)."""
    import numpy as np
    import pandas as pd

    want, name = spec["dtype"], spec["name"]
    dt = col.dtype
    if want == "object":
        return col

    def fail(why: str) -> InvalidInput:
        return InvalidInput(f"column {name!r} expects {want} but {why}")

    if want in FLOAT_TYPES:
        if str(dt) == want:
            return col
        if pd.api.types.is_bool_dtype(dt):
            raise fail("got bool values")
        if pd.api.types.is_numeric_dtype(dt):
            return col.astype(want)
        if pd.api.types.is_object_dtype(dt):
            kind = pd.api.types.infer_dtype(col, skipna=True)
            if kind in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
                return col.astype(want)
        raise fail(f"got {_describe(col)}; strings are never converted to numbers")
    if want in INT_TYPES:
        if str(dt) == want:
            return col
        if pd.api.types.is_bool_dtype(dt):
            raise fail("got bool values")
        if pd.api.types.is_integer_dtype(dt):
            if col.isna().any():
                raise fail("has missing values")
            out = col.astype(want)
            if not np.array_equal(out.to_numpy(), col.to_numpy()):
                raise fail("has values out of its range")
            return out
        if pd.api.types.is_float_dtype(dt):
            values = col.to_numpy()
            if np.isnan(values).any():
                raise fail("has missing values")
            if not np.all(np.mod(values, 1) == 0):
                bad = values[np.mod(values, 1) != 0][0]
                raise fail(f"got a non-integral float ({bad.item()!r})")
            return col.astype(want)
        if pd.api.types.is_object_dtype(dt) and pd.api.types.infer_dtype(col, skipna=True) == "integer":
            if col.isna().any():
                raise fail("has missing values")
            return col.astype(want)
        raise fail(f"got {_describe(col)}; strings are never converted to numbers")
    if want == "bool":
        if pd.api.types.is_bool_dtype(dt):
            return col
        if pd.api.types.is_object_dtype(dt) and pd.api.types.infer_dtype(col, skipna=True) in ("boolean", "empty"):
            return col
        raise fail(f"got {_describe(col)}")
    if want == "string":
        if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dt) and not pd.api.types.is_object_dtype(dt):
            return col
        if pd.api.types.is_object_dtype(dt) and pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            return col
        raise fail(f"got {_describe(col)}")
    if want == "category":
        if isinstance(dt, pd.CategoricalDtype):
            return col
        if pd.api.types.is_string_dtype(dt) or pd.api.types.is_object_dtype(dt):
            return col.astype("category")
        raise fail(f"got {_describe(col)}")
    if want == "datetime":
        if pd.api.types.is_datetime64_any_dtype(dt):
            return col
        if pd.api.types.is_object_dtype(dt) or pd.api.types.is_string_dtype(dt):
            try:
                return pd.to_datetime(col)
            except (ValueError, TypeError) as exc:
                raise fail(f"has a value that is not a date-time ({exc})") from exc
        raise fail(f"got {_describe(col)}")
    return col


def _describe(col: pd.Series) -> str:
    import pandas as pd

    if pd.api.types.is_object_dtype(col.dtype):
        kind = pd.api.types.infer_dtype(col, skipna=True)
        first = col.dropna()
        sample = f" such as {_plain(first.iloc[0])!r}" if len(first) else ""
        return f"{kind} values{sample}"
    return f"dtype {col.dtype}"


def output_spec(task: str, classes: list | None, label_dtype: str | None = None) -> list[dict]:
    """The outputs a model of this task produces."""
    if task == "classification" and classes is not None:
        return [{"name": "prediction", "dtype": label_dtype or "object", "shape": [-1]}] + [
            {"name": f"proba_{c}", "dtype": "float64", "shape": [-1]} for c in classes
        ]
    return [{"name": "prediction", "dtype": "float64", "shape": [-1]}]


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value
