"""Expectations: small parameter records, each compiled to a vectorised check (SQL run by DuckDB).

Semantics are the same for every input, because every input goes through the same engine:
NaN counts as null; nulls are left out of the denominators of `between`, `in_set`,
`no_unseen_categories`, `regex`, `length_between`, `unique` and `column_pair` (a null check is its
own expectation, `max_nulls`); `mostly` is the share of those non-null rows that must pass.

    >>> from mloop.validation import expectations as E
    >>> E.Between(column="age", min=18, max=95).to_dict()
    {'type': 'between', 'column': 'age', 'min': 18, 'max': 95}
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from mloop.errors import InvalidInput

SEVERITIES = ("error", "warn")
COMPARISONS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "<>"}
DTYPE_FAMILIES = ("integer", "float", "numeric", "string", "boolean", "datetime")

REGISTRY: dict[str, type[Expectation]] = {}
ALIASES = {"not_null": "max_nulls"}  # YAML shorthands


class ParamError(InvalidInput):
    """Raised when one parameter of an expectation is wrong; `.key` names it (YAML adds its line)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _register(cls: type[Expectation]) -> type[Expectation]:
    REGISTRY[cls.type] = cls
    return cls


@dataclass(kw_only=True)
class Expectation:
    """Base of every expectation: a severity (`error` fails the suite, `warn` only reports) and a name."""

    type: ClassVar[str] = ""
    row_level: ClassVar[bool] = False

    severity: str = "error"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ParamError("severity", f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if self.row_level:
            mostly = self.mostly  # type: ignore[attr-defined]
            if not isinstance(mostly, int | float) or isinstance(mostly, bool) or not 0.0 <= mostly <= 1.0:
                raise ParamError("mostly", f"mostly must be a fraction in [0, 1], got {mostly!r}")
        self.check()

    def check(self) -> None:
        """Semantic checks of the parameters (subclasses raise ParamError)."""

    def used_columns(self) -> list[str]:
        """Columns this expectation reads."""
        col = getattr(self, "column", None)
        return [col] if col else []

    @property
    def key(self) -> str:
        """The expectation's name in results: its `name`, else `type:column`."""
        if self.name:
            return self.name
        cols = self.used_columns()
        return f"{self.type}:{','.join(cols)}" if cols else self.type

    def params(self) -> dict[str, Any]:
        """Parameters that differ from their defaults (what YAML shows)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            if value is None and default is None:
                continue
            if f.name in ("severity", "mostly", "name") and value == default:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **self.params()}

    def describe(self) -> str:
        """One line a person reads in a report."""
        params = {k: v for k, v in self.params().items() if k not in ("column", "severity", "name")}
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        return f"{self.type}({', '.join(self.used_columns())}{'; ' if shown and self.used_columns() else ''}{shown})"


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 5:
        return "[" + ", ".join(repr(v) for v in value[:5]) + f", ... {len(value)} values]"
    return repr(value)


def _need_column(column: Any) -> None:
    if not isinstance(column, str) or not column:
        raise ParamError("column", f"column must be a non-empty string, got {column!r}")


def _number(key: str, value: Any, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(key, f"{key} must be a number, got {value!r}")


def _bounds(obj: Any, lo: str = "min", hi: str = "max", *, need_one: bool = True) -> None:
    a, b = getattr(obj, lo), getattr(obj, hi)
    for key, value in ((lo, a), (hi, b)):
        if value is not None and isinstance(value, bool):
            raise ParamError(key, f"{key} must be a number, got {value!r}")
    if need_one and a is None and b is None:
        raise ParamError(lo, f"{obj.type} needs {lo} or {hi} (or both)")
    if a is not None and b is not None:
        try:
            bad = a > b
        except TypeError:
            raise ParamError(hi, f"{lo} {a!r} and {hi} {b!r} cannot be compared") from None
        if bad:
            raise ParamError(hi, f"{hi} {b!r} is below {lo} {a!r}")


# -- schema-level ---------------------------------------------------------------------------------

@_register
@dataclass(kw_only=True)
class ColumnPresent(Expectation):
    """The column exists."""

    type: ClassVar[str] = "column_present"
    column: str

    def check(self) -> None:
        _need_column(self.column)


@_register
@dataclass(kw_only=True)
class Dtype(Expectation):
    """The column's type: an arrow type name (`int64`, `double`, `string`, `bool`, `timestamp[tz=UTC]`)
    compared after normalising (string/large_string/categorical are `string`; timestamp units are
    ignored), or a family: integer, float, numeric, string, boolean, datetime."""

    type: ClassVar[str] = "dtype"
    column: str
    dtype: str

    def check(self) -> None:
        _need_column(self.column)
        if not isinstance(self.dtype, str) or not self.dtype:
            raise ParamError("dtype", f"dtype must be a type name, got {self.dtype!r}")


# -- aggregate-level ------------------------------------------------------------------------------

@_register
@dataclass(kw_only=True)
class MaxNulls(Expectation):
    """At most `fraction` of the rows are null (NaN counts as null); `fraction=0` means not null."""

    type: ClassVar[str] = "max_nulls"
    column: str
    fraction: float = 0.0

    def check(self) -> None:
        _need_column(self.column)
        _number("fraction", self.fraction, optional=False)
        if not 0.0 <= self.fraction <= 1.0:
            raise ParamError("fraction", f"fraction must be in [0, 1], got {self.fraction!r}")

    @property
    def key(self) -> str:
        if self.name:
            return self.name
        return f"not_null:{self.column}" if self.fraction == 0 else f"max_nulls:{self.column}"


def not_null(column: str, **kw: Any) -> MaxNulls:
    """Shorthand: no nulls (and no NaN) in `column`."""
    return MaxNulls(column=column, fraction=0.0, **kw)


@_register
@dataclass(kw_only=True)
class RowCount(Expectation):
    """The number of rows is between min and max (inclusive)."""

    type: ClassVar[str] = "row_count"
    min: int | None = None
    max: int | None = None

    def check(self) -> None:
        _number("min", self.min)
        _number("max", self.max)
        _bounds(self)


@dataclass(kw_only=True)
class _Statistic(Expectation):
    column: str
    min: float | None = None
    max: float | None = None

    def check(self) -> None:
        _need_column(self.column)
        _number("min", self.min)
        _number("max", self.max)
        _bounds(self)


@_register
@dataclass(kw_only=True)
class Mean(_Statistic):
    """The mean of the non-null values is within [min, max]."""

    type: ClassVar[str] = "mean"


@_register
@dataclass(kw_only=True)
class Std(_Statistic):
    """The sample standard deviation (ddof=1) of the non-null values is within [min, max]."""

    type: ClassVar[str] = "std"


@_register
@dataclass(kw_only=True)
class Quantile(_Statistic):
    """The q-quantile (linear interpolation, as numpy's default) of the non-null values is within bounds."""

    type: ClassVar[str] = "quantile"
    q: float = 0.5

    def check(self) -> None:
        super().check()
        _number("q", self.q, optional=False)
        if not 0.0 <= self.q <= 1.0:
            raise ParamError("q", f"q must be in [0, 1], got {self.q!r}")

    @property
    def key(self) -> str:
        return self.name or f"quantile:{self.column}:{self.q:g}"


# -- row-level ------------------------------------------------------------------------------------

@_register
@dataclass(kw_only=True)
class Unique(Expectation):
    """No two rows share a value of `column` (or of `columns` together). Rows with a null key are
    left out; every row whose key occurs more than once fails."""

    type: ClassVar[str] = "unique"
    row_level: ClassVar[bool] = True
    column: str | None = None
    columns: list[str] | None = None
    mostly: float = 1.0

    def check(self) -> None:
        if (self.column is None) == (self.columns is None):
            raise ParamError("column", "unique needs exactly one of column or columns")
        if self.column is not None:
            _need_column(self.column)
        else:
            if not isinstance(self.columns, list | tuple) or not self.columns or not all(
                    isinstance(c, str) and c for c in self.columns):
                raise ParamError("columns", f"columns must be a non-empty list of names, got {self.columns!r}")
            self.columns = list(self.columns)

    def used_columns(self) -> list[str]:
        return [self.column] if self.column else list(self.columns or [])


@_register
@dataclass(kw_only=True)
class Between(Expectation):
    """Non-null values are within [min, max]; `min_inclusive`/`max_inclusive` make the ends strict."""

    type: ClassVar[str] = "between"
    row_level: ClassVar[bool] = True
    column: str
    min: Any = None
    max: Any = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    mostly: float = 1.0

    def check(self) -> None:
        _need_column(self.column)
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | str)) \
                    and not hasattr(value, "isoformat"):
                raise ParamError(key, f"{key} must be a number or a date/time, got {value!r}")
        for key in ("min_inclusive", "max_inclusive"):
            if not isinstance(getattr(self, key), bool):
                raise ParamError(key, f"{key} must be true or false, got {getattr(self, key)!r}")
        _bounds(self)

    def params(self) -> dict[str, Any]:
        out = super().params()
        for key in ("min_inclusive", "max_inclusive"):
            if out.get(key) is True:
                out.pop(key)
        return out


@_register
@dataclass(kw_only=True)
class InSet(Expectation):
    """Non-null values are in `values`."""

    type: ClassVar[str] = "in_set"
    row_level: ClassVar[bool] = True
    column: str
    values: list[Any]
    mostly: float = 1.0

    def check(self) -> None:
        _need_column(self.column)
        if isinstance(self.values, set | frozenset | tuple):
            self.values = sorted(self.values, key=repr)
        if not isinstance(self.values, list):
            raise ParamError("values", f"values must be a list, got {self.values!r}")
        kinds = {_literal_kind(v) for v in self.values if v is not None}
        if None in kinds:
            bad = next(v for v in self.values if _literal_kind(v) is None)
            raise ParamError("values", f"values may hold strings, numbers or booleans, not {bad!r}")
        if len(kinds) > 1 and kinds != {"number"}:
            raise ParamError("values", f"values mix kinds ({', '.join(sorted(kinds))}); use one kind")
        self.values = [v for v in self.values if v is not None]


def _literal_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


@_register
@dataclass(kw_only=True)
class NoUnseenCategories(InSet):
    """Like `in_set` against a reference set of categories; the observed value lists the new ones."""

    type: ClassVar[str] = "no_unseen_categories"


@_register
@dataclass(kw_only=True)
class Regex(Expectation):
    """Non-null values fully match `pattern` (RE2 syntax: no lookaround, no backreferences)."""

    type: ClassVar[str] = "regex"
    row_level: ClassVar[bool] = True
    column: str
    pattern: str
    mostly: float = 1.0

    def check(self) -> None:
        _need_column(self.column)
        if not isinstance(self.pattern, str):
            raise ParamError("pattern", f"pattern must be a string, got {self.pattern!r}")
        check_re2(self.pattern)


def check_re2(pattern: str) -> None:
    """Compile `pattern` with RE2 (the engine pyarrow and DuckDB both use); InvalidInput if RE2 refuses it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        hint = ""
        if any(tok in pattern for tok in ("(?=", "(?!", "(?<=", "(?<!")):
            hint = " (RE2 has no lookaround)"
        elif any(f"\\{d}" in pattern for d in "123456789"):
            hint = " (RE2 has no backreferences)"
        raise ParamError("pattern", f"pattern {pattern!r} is not valid RE2 syntax{hint}: {exc}") from None


@_register
@dataclass(kw_only=True)
class LengthBetween(Expectation):
    """Non-null strings have between min and max characters (inclusive)."""

    type: ClassVar[str] = "length_between"
    row_level: ClassVar[bool] = True
    column: str
    min: int | None = None
    max: int | None = None
    mostly: float = 1.0

    def check(self) -> None:
        _need_column(self.column)
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ParamError(key, f"{key} must be a non-negative integer, got {value!r}")
        _bounds(self)


@_register
@dataclass(kw_only=True)
class ColumnPair(Expectation):
    """`a <op> b` holds on every row where both are non-null (op: <, <=, >, >=, ==, !=)."""

    type: ClassVar[str] = "column_pair"
    row_level: ClassVar[bool] = True
    a: str
    b: str
    op: str = "<="
    mostly: float = 1.0

    def check(self) -> None:
        for key in ("a", "b"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ParamError(key, f"{key} must be a column name, got {getattr(self, key)!r}")
        if self.op not in COMPARISONS:
            raise ParamError("op", f"op must be one of {', '.join(COMPARISONS)}, got {self.op!r}")

    def used_columns(self) -> list[str]:
        return [self.a, self.b]

    @property
    def key(self) -> str:
        return self.name or f"column_pair:{self.a}{self.op}{self.b}"

    def params(self) -> dict[str, Any]:
        out = super().params()
        out["op"] = self.op
        return out


@_register
@dataclass(kw_only=True)
class Custom(Expectation):
    """A user's vectorised predicate: `fn(frame: pandas.DataFrame) -> bool array` (True = row passes),
    called on batches of rows. `fn` is a callable or an importable `"module:function"` (needed for YAML).
    A null answer counts as a failure; the denominator is every row."""

    type: ClassVar[str] = "custom"
    row_level: ClassVar[bool] = True
    fn: Any
    columns: list[str] | None = None
    mostly: float = 1.0

    def check(self) -> None:
        if isinstance(self.fn, str):
            if ":" not in self.fn:
                raise ParamError("fn", f"fn must be 'module:function', got {self.fn!r}")
        elif not callable(self.fn):
            raise ParamError("fn", f"fn must be a callable or 'module:function', got {self.fn!r}")
        if self.columns is not None and (not isinstance(self.columns, list) or not all(
                isinstance(c, str) for c in self.columns)):
            raise ParamError("columns", f"columns must be a list of names, got {self.columns!r}")

    def used_columns(self) -> list[str]:
        return list(self.columns or [])

    @property
    def key(self) -> str:
        if self.name:
            return self.name
        return f"custom:{self.fn if isinstance(self.fn, str) else getattr(self.fn, '__name__', 'fn')}"

    def resolve(self) -> Callable[[Any], Any]:
        if callable(self.fn):
            return self.fn
        module, _, attr = self.fn.partition(":")
        try:
            target: Any = importlib.import_module(module)
            for part in attr.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"custom expectation fn {self.fn!r} cannot be imported: {exc}") from None
        return target

    def params(self) -> dict[str, Any]:
        out = super().params()
        if callable(self.fn):
            module, qual = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", "")
            out["fn"] = f"{module}:{qual}" if module and "<" not in qual else "<callable>"
        return out


def custom(fn: Callable[[Any], Any] | str, **kw: Any) -> Custom:
    """Shorthand for `Custom(fn=fn, ...)`."""
    return Custom(fn=fn, **kw)


def from_dict(spec: dict[str, Any]) -> Expectation:
    """Build an expectation from its dict form (`{"type": ..., params...}`); ParamError names the key."""
    if not isinstance(spec, dict):
        raise ParamError("type", f"an expectation must be a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    if kind is None:
        raise ParamError("type", "expectation has no 'type'")
    cls = REGISTRY.get(ALIASES.get(kind, kind)) if isinstance(kind, str) else None
    if cls is None:
        raise ParamError("type", f"unknown expectation type {kind!r} (known: {', '.join(sorted(REGISTRY))})")
    names = {f.name: f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in names:
            raise ParamError(key, f"unknown parameter {key!r} for {kind!r} (parameters: {', '.join(sorted(names))})")
        kwargs[names[key]] = value
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in kwargs]
    if missing:
        raise ParamError("type", f"{kind!r} needs parameter(s) {', '.join(missing)}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ParamError("type", f"bad parameters for {kind!r}: {exc}") from None


__all__ = [
    "Expectation", "ColumnPresent", "Dtype", "MaxNulls", "not_null", "RowCount", "Mean", "Std", "Quantile",
    "Unique", "Between", "InSet", "NoUnseenCategories", "Regex", "LengthBetween", "ColumnPair", "Custom",
    "custom", "from_dict", "REGISTRY", "ParamError", "check_re2",
]
