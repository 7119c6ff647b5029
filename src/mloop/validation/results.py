"""What `suite.validate(data)` returns: one ExpectationResult per expectation and a ValidationResult
that renders as JSON, a self-contained HTML page, a rich table and a notebook table."""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mloop.errors import NotFound


@dataclass
class ExpectationResult:
    """The outcome of one expectation.

    `failing_rows` and `failing_fraction` count rows that break it out of `checked_rows` (the
    non-null rows for row-level checks; None for schema/aggregate checks); `observed` is what was
    measured (the null share, the min/max seen, the mean, the unseen values...); `examples` are up
    to 10 `{"row": index, "value": ...}` in row order.
    """

    name: str
    type: str
    columns: list[str]
    severity: str
    passed: bool
    description: str = ""
    observed: Any = None
    failing_rows: int | None = None
    failing_fraction: float | None = None
    checked_rows: int | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.passed:
            return "pass"
        return "fail" if self.severity == "error" else "warn"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status
        return jsonable(out)


@dataclass
class ValidationResult:
    """All results of one validation; `.ok` is True when every error-severity expectation passed."""

    suite: str | None
    source: str
    rows: int
    results: list[ExpectationResult]
    _failures: Callable[[str], Any] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return all(r.passed or r.severity != "error" for r in self.results)

    @property
    def failed(self) -> list[ExpectationResult]:
        """Error-severity expectations that failed."""
        return [r for r in self.results if r.status == "fail"]

    @property
    def warnings(self) -> list[ExpectationResult]:
        return [r for r in self.results if r.status == "warn"]

    def __getitem__(self, name: str) -> ExpectationResult:
        for r in self.results:
            if r.name == name:
                return r
        raise NotFound(f"no expectation named {name!r} in this result (names: {', '.join(self.names())})")

    def names(self) -> list[str]:
        return [r.name for r in self.results]

    def failures(self, name: str):  # noqa: ANN201 - pandas.DataFrame
        """Every row that breaks expectation `name`, as a pandas DataFrame with a `row` index column.
        Schema and aggregate expectations have no failing rows (an empty frame)."""
        self[name]
        if self._failures is None:
            raise NotFound("this result was loaded from JSON; re-run validate() to fetch failing rows")
        return self._failures(name)

    def summary(self) -> str:
        fails, warns = self.failed, self.warnings
        head = "ok" if self.ok else "FAILED"
        text = f"{head}: {len(self.results) - len(fails) - len(warns)}/{len(self.results)} expectations passed"
        if fails:
            text += "; failed: " + ", ".join(f"{r.name} ({r.message})" for r in fails)
        if warns:
            text += f"; {len(warns)} warning(s): " + ", ".join(r.name for r in warns)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "source": self.source, "rows": self.rows, "ok": self.ok,
                "results": [r.to_dict() for r in self.results]}

    def to_json(self, **kw: Any) -> str:
        kw.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        keys = set(ExpectationResult.__dataclass_fields__)
        return cls(suite=data.get("suite"), source=data.get("source", ""), rows=int(data.get("rows", 0)),
                   results=[ExpectationResult(**{k: v for k, v in r.items() if k in keys})
                            for r in data.get("results", [])])

    # -- rendering -------------------------------------------------------------------------------

    def rows_for_table(self) -> list[list[str]]:
        out = []
        for r in self.results:
            failing = "" if r.failing_rows is None else f"{r.failing_rows:,} ({r.failing_fraction:.2%})"
            out.append([r.status, r.name, r.severity, _text(r.observed), failing,
                        ", ".join(f"#{e['row']}={_text(e['value'])}" for e in r.examples[:3]), r.message])
        return out

    COLUMNS = ("status", "expectation", "severity", "observed", "failing rows", "examples", "message")

    def __rich__(self):  # noqa: ANN204 - rich renders this
        return self.table()

    def table(self, only: tuple[str, ...] = ("pass", "fail", "warn")):  # noqa: ANN201 - rich.table.Table
        """A rich table of the results whose status is in `only` (e.g. `only=("fail", "warn")`)."""
        from rich.markup import escape
        from rich.table import Table

        title = f"validation of {self.source} ({self.rows:,} rows)" + (f" against {self.suite}" if self.suite else "")
        table = Table(title=title, caption=self.summary().split(";")[0])
        for col in self.COLUMNS:
            table.add_column(col, overflow="fold")
        styles = {"pass": "green", "fail": "bold red", "warn": "yellow"}
        for row in self.rows_for_table():
            if row[0] in only:
                table.add_row(*[escape(str(v)) for v in row], style=styles[row[0]] if row[0] != "pass" else None)
        return table

    def _table_html(self) -> str:
        colors = {"pass": "#e7f6e7", "fail": "#fbe3e3", "warn": "#fff4d6"}
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.COLUMNS)
        body = []
        for r, row in zip(self.results, self.rows_for_table(), strict=True):
            cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
            body.append(f'<tr style="background:{colors[r.status]}" title="{html.escape(r.description)}">'
                        f"{cells}</tr>")
        status = "ok" if self.ok else "failed"
        return (f'<div class="mloop-validation"><p><b>{html.escape(self.summary())}</b></p>'
                f'<table class="mloop-{status}"><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table></div>")

    def _repr_html_(self) -> str:
        return self._table_html()

    def to_html(self) -> str:
        """A self-contained HTML page (inline CSS, no scripts or external links)."""
        title = html.escape(f"mloop validation: {self.source}")
        details = []
        for r in self.results:
            if r.examples:
                items = "".join(f"<li>row {e['row']}: {html.escape(_text(e['value']))}</li>" for e in r.examples)
                details.append(f"<h3>{html.escape(r.name)}</h3><p>{html.escape(r.message)}</p><ul>{items}</ul>")
        style = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
                 "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
                 "th{background:#f0f0f0}")
        return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>"
                f"<style>{style}</style></head><body><h1>{title}</h1>"
                f"<p>{self.rows:,} rows; suite {html.escape(str(self.suite or '(unsaved)'))}</p>"
                f"{self._table_html()}<h2>Failing examples</h2>{''.join(details) or '<p>none</p>'}"
                "</body></html>")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) if not isinstance(v, str) else repr(v) for v in value[:8]) + \
            (", ..." if len(value) > 8 else "") + "]"
    return str(value)


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, timestamps to ISO text, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "item") and not hasattr(value, "isoformat"):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, _dt.datetime | _dt.date) or hasattr(value, "isoformat"):
        try:
            return value.isoformat()
        except ValueError:  # NaT
            return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    return str(value)
