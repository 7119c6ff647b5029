"""`diff(a, b)`: files added, removed and changed; for tables, schema changes, the row-count change
and the columns whose profile moved most, with the numbers.

A numeric column's move is its mean shift in units of the older standard deviation (and the
change in null rate); a categorical one's is the total variation distance between value shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

TOP_COLUMNS = 5


@dataclass
class DatasetDiff:
    """What changed from `a` to `b`; `.to_dict()` for JSON."""

    a: str
    b: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    rows: dict | None = None  # {"a", "b", "change"}
    schema: dict | None = None  # {"added": [...], "removed": [...], "retyped": [{"name", "a", "b"}]}
    columns: list[dict] = field(default_factory=list)  # columns that moved most, biggest first

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "identical": self.identical, "files": {
            "added": self.added, "removed": self.removed, "changed": self.changed, "unchanged": self.unchanged},
            "rows": self.rows, "schema": self.schema, "columns": self.columns}


def diff(a: Any, b: Any) -> DatasetDiff:
    """Compare two dataset versions (URIs or DatasetVersion objects).

        >>> mloop.data.diff("churn-train@1", "churn-train@2").columns[0]  # doctest: +SKIP
        {'name': 'age', 'score': 0.41, 'mean_a': 38.2, 'mean_b': 41.9, ...}
    """
    from mloop.data.versions import resolve

    va, vb = resolve(a), resolve(b)
    out = DatasetDiff(va.uri, vb.uri)
    fa = {e.path: e.digest for e in va.files}
    fb = {e.path: e.digest for e in vb.files}
    if not va.is_dir and not vb.is_dir and len(fa) == len(fb) == 1:  # single files: compare content
        (_, da), (pb_, db) = next(iter(fa.items())), next(iter(fb.items()))
        fa, fb = {pb_: da}, {pb_: db}
    out.added = sorted(set(fb) - set(fa))
    out.removed = sorted(set(fa) - set(fb))
    out.changed = sorted(k for k in set(fa) & set(fb) if fa[k] != fb[k])
    out.unchanged = len(set(fa) & set(fb)) - len(out.changed)
    pa, pb = va.profile, vb.profile
    if pa is not None and pb is not None:
        out.rows = {"a": pa.rows, "b": pb.rows, "change": pb.rows - pa.rows}
        sa = {c["name"]: c["dtype"] for c in pa.schema}
        sb = {c["name"]: c["dtype"] for c in pb.schema}
        out.schema = {
            "added": [n for n in sb if n not in sa],
            "removed": [n for n in sa if n not in sb],
            "retyped": [{"name": n, "a": sa[n], "b": sb[n]} for n in sa if n in sb and sa[n] != sb[n]],
        }
        moves = [m for n in sa if n in sb and (m := column_move(n, pa.columns[n], pb.columns[n], pa.rows, pb.rows)) is not None]
        moves.sort(key=lambda m: -m["score"])
        out.columns = [m for m in moves if m["score"] > 0][:TOP_COLUMNS]
    return out


def column_move(name: str, ca: dict, cb: dict, rows_a: int, rows_b: int) -> dict | None:
    """How far one column's profile moved (None when the kinds differ)."""
    if ca["kind"] != cb["kind"]:
        return None
    null_a = ca["nulls"] / rows_a if rows_a else 0.0
    null_b = cb["nulls"] / rows_b if rows_b else 0.0
    out: dict[str, Any] = {"name": name, "kind": ca["kind"], "null_rate_a": null_a, "null_rate_b": null_b}
    score = abs(null_b - null_a)
    if ca["kind"] == "numeric" and ca["mean"] is not None and cb["mean"] is not None:
        std = ca["std"] or cb["std"] or 0.0
        shift = (cb["mean"] - ca["mean"]) / std if std else (0.0 if cb["mean"] == ca["mean"] else math.inf)
        out.update(mean_a=ca["mean"], mean_b=cb["mean"], std_a=ca["std"], std_b=cb["std"],
                   mean_shift_in_std=shift)
        score = max(score, abs(shift) if math.isfinite(shift) else 1e9)
    elif ca.get("value_counts") is not None and cb.get("value_counts") is not None:
        tv = _total_variation(ca["value_counts"], cb["value_counts"])
        out["total_variation"] = tv
        score = max(score, tv)
    out["score"] = score
    return out


def _total_variation(a: dict[str, int], b: dict[str, int]) -> float:
    ta, tb = sum(a.values()) or 1, sum(b.values()) or 1
    return 0.5 * sum(abs(a.get(k, 0) / ta - b.get(k, 0) / tb) for k in set(a) | set(b))
