"""Quality gates: `mloop.gate(...)` checks a candidate's metrics against thresholds and against the
champion, and raises `GateFailed` with a table of every criterion when one fails.

    >>> mloop.gate(metrics, require={"roc_auc": ">= 0.80"}, compare_to="churn@champion",  # doctest: +SKIP
    ...            candidate=model, eval_data=valid_df, target="churned", max_regression={"roc_auc": 0.005})

With `compare_to`, the candidate and the champion are both evaluated with `mloop.evaluate` on
`eval_data`, so both are measured on the same rows. `max_regression` is an absolute difference in
the metric's units. Directions: log_loss, mae, rmse and mape are minimised, evaluate's other metrics
maximised; any other compared metric must be named in `maximize` or `minimize`. With no champion the
comparisons pass and the report says so. Called in a pipeline body with step outputs, `gate` becomes a
step of its own (never cached as a failure, never retried).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from mloop.errors import GateFailed, InvalidInput, NotFound

MINIMIZED = ("log_loss", "mae", "rmse", "mape")
MAXIMIZED = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
ALIASES = {"auc": "roc_auc", "logloss": "log_loss"}
_OPS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
        "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
_REQ = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass
class GateReport:
    """The verdict of one gate: each criterion with the candidate's value, the champion's and the verdict."""

    passed: bool
    criteria: list[dict] = field(default_factory=list)
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    compare_to: str | None = None
    champion: str | None = None  # the resolved champion ("models:/name/N"), None when there is none
    champion_missing: bool = False
    candidate: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "criteria": self.criteria, "candidate_metrics": self.candidate_metrics,
                "champion_metrics": self.champion_metrics, "compare_to": self.compare_to, "champion": self.champion,
                "champion_missing": self.champion_missing, "candidate": self.candidate, "notes": self.notes}

    @classmethod
    def from_dict(cls, data: dict) -> GateReport:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})

    def table(self) -> str:
        """The criteria as a plain-text table."""
        rows = [["criterion", "candidate", "champion", "verdict"]]
        for c in self.criteria:
            rows.append([c["criterion"], _num(c.get("candidate")), _num(c.get("champion")), c["verdict"]])
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def to_markdown(self) -> str:
        out = ["| criterion | candidate | champion | delta | verdict |", "|---|---|---|---|---|"]
        for c in self.criteria:
            cand, champ = c.get("candidate"), c.get("champion")
            delta = _num(cand - champ, signed=True) if isinstance(cand, float | int) and isinstance(champ, float | int) else ""
            verdict = "✅ pass" if c["verdict"] == "pass" else "❌ fail"
            out.append(f"| {c['criterion']} | {_num(cand)} | {_num(champ)} | {delta} | {verdict} |")
        out += [f"\n_{n}_" for n in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _num(value: Any, signed: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return str(value)


def _metric(metrics: dict[str, float], key: str) -> float | None:
    if key in metrics:
        return metrics[key]
    alias = ALIASES.get(key)
    if alias and alias in metrics:
        return metrics[alias]
    return None


def _direction(key: str, maximize: list[str], minimize: list[str]) -> str:
    base = ALIASES.get(key, key)
    if key in maximize or base in maximize:
        return "max"
    if key in minimize or base in minimize:
        return "min"
    if base in MINIMIZED:
        return "min"
    if base in MAXIMIZED:
        return "max"
    raise InvalidInput(f"gate compares {key!r}, whose direction is unknown; name it in maximize=[...] or "
                       f"minimize=[...] (known: maximised {', '.join(MAXIMIZED)}; minimised {', '.join(MINIMIZED)})")


def _parse_require(key: str, rule: Any) -> tuple[str, float]:
    if isinstance(rule, int | float) and not isinstance(rule, bool):
        return ">=", float(rule)
    match = _REQ.match(rule) if isinstance(rule, str) else None
    if not match:
        raise InvalidInput(f"gate require[{key!r}] must be like '>= 0.8' (operators >=, >, <=, <, ==, !=), got {rule!r}")
    return match.group(1), float(match.group(2))


def evaluate_gate(metrics: dict[str, float] | None = None, *, require: dict[str, Any] | None = None,
                  compare_to: str | None = None, candidate: Any = None, eval_data: Any = None,
                  target: str | None = None, max_regression: dict[str, float] | None = None,
                  maximize: list[str] | tuple[str, ...] = (), minimize: list[str] | tuple[str, ...] = (),
                  task: str | None = None) -> GateReport:
    """Compute the report without raising (see `gate`)."""
    require = dict(require or {})
    max_regression = dict(max_regression or {})
    maximize, minimize = list(maximize), list(minimize)
    compared = list(dict.fromkeys([*max_regression, *maximize, *minimize]))
    for key in compared:
        _direction(key, maximize, minimize)  # unknown directions fail before any evaluation
    for key, tol in max_regression.items():
        if not isinstance(tol, int | float) or isinstance(tol, bool) or tol < 0:
            raise InvalidInput(f"gate max_regression[{key!r}] must be a number >= 0, got {tol!r}")
    rules = {k: _parse_require(k, v) for k, v in require.items()}
    if metrics is not None and not isinstance(metrics, dict):
        raise InvalidInput(f"gate metrics must be a dict of metric -> number, got {type(metrics).__name__}")
    cand = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    report = GateReport(passed=True, compare_to=compare_to, candidate=_describe(candidate))
    if candidate is not None and eval_data is not None:
        cand.update(_evaluate(candidate, eval_data, target, task, "candidate"))
    elif compare_to is not None and compared and candidate is None:
        raise InvalidInput("gate compare_to needs candidate= (the model) and eval_data= so both models are "
                           "evaluated on the same data")
    report.candidate_metrics = cand
    champion_metrics: dict[str, float] = {}
    if compare_to is not None:
        if eval_data is None:
            raise InvalidInput(f"gate compare_to={compare_to!r} needs eval_data= (and target=) to evaluate the "
                               "candidate and the champion on the same data")
        champion_uri = _resolve_champion(compare_to)
        if champion_uri is None:
            report.champion_missing = True
            report.notes.append(f"no champion {compare_to!r} yet: comparisons pass")
        else:
            report.champion = champion_uri
            champion_metrics = _evaluate(champion_uri, eval_data, target, task, "champion")
    report.champion_metrics = champion_metrics

    for key, (op, bound) in rules.items():
        value = _metric(cand, key)
        if value is None:
            raise InvalidInput(f"gate requires {key!r}, which the candidate's metrics do not have "
                               f"(have: {', '.join(sorted(cand)) or 'none'})")
        ok = not math.isnan(value) and _OPS[op](value, bound)
        report.criteria.append({"criterion": f"{key} {op} {bound:g}", "metric": key, "candidate": value,
                                "champion": _metric(champion_metrics, key), "verdict": "pass" if ok else "fail"})
    for key in compared:
        direction = _direction(key, maximize, minimize)
        tol = float(max_regression.get(key, 0.0))
        value = _metric(cand, key)
        if value is None:
            raise InvalidInput(f"gate compares {key!r}, which the candidate's metrics do not have "
                               f"(have: {', '.join(sorted(cand)) or 'none'}); pass candidate= and eval_data=")
        champ = _metric(champion_metrics, key)
        word = "no regression" if tol == 0 else f"regression <= {tol:g}"
        criterion = f"{key} vs champion ({'higher' if direction == 'max' else 'lower'} is better, {word})"
        if champ is None:
            ok = True
        else:
            regression = (champ - value) if direction == "max" else (value - champ)
            ok = not math.isnan(value) and regression <= tol + 1e-12
        report.criteria.append({"criterion": criterion, "metric": key, "candidate": value, "champion": champ,
                                "verdict": "pass" if ok else "fail", "max_regression": tol, "direction": direction})
    report.passed = all(c["verdict"] == "pass" for c in report.criteria)
    return report


def _describe(candidate: Any) -> str | None:
    if candidate is None:
        return None
    if isinstance(candidate, str):
        return candidate
    if isinstance(candidate, dict) and "uri" in candidate:
        return str(candidate["uri"])
    uri = getattr(candidate, "uri", None)
    return str(uri) if uri else type(candidate).__name__


def _model_arg(candidate: Any) -> Any:
    if isinstance(candidate, dict) and "uri" in candidate:  # what mloop.steps.register returns
        return candidate["uri"]
    return candidate


def _evaluate(model: Any, data: Any, target: str | None, task: str | None, role: str) -> dict[str, float]:
    import mloop

    if target is None:
        raise InvalidInput("gate needs target= (the label column of eval_data) to evaluate models")
    kwargs: dict[str, Any] = {"task": task} if task else {}
    try:  # inside a step, log both under their role so the candidate's do not overwrite the champion's
        result = mloop.evaluate(_model_arg(model), data, target, plots=False, prefix=f"gate.{role}.", **kwargs)
    except TypeError:
        result = mloop.evaluate(_model_arg(model), data, target, **kwargs)
    return {k: float(v) for k, v in dict(result).items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _resolve_champion(uri: str) -> str | None:
    import mloop

    try:
        mv = mloop.models.get(uri)
    except NotFound:
        return None
    return f"models:/{mv.name}/{mv.version}"


def _run_gate(metrics: Any = None, require: Any = None, compare_to: Any = None, candidate: Any = None,
              eval_data: Any = None, target: Any = None, max_regression: Any = None, maximize: Any = (),
              minimize: Any = (), task: Any = None) -> dict:
    """The gate as a pipeline step: returns the report, raises GateFailed."""
    return gate(metrics, require=require, compare_to=compare_to, candidate=candidate, eval_data=eval_data,
                target=target, max_regression=max_regression, maximize=maximize, minimize=minimize,
                task=task).to_dict()


def _champion_key(args: dict) -> Any:
    """The gate step's cache key includes the champion it compares with (a moved alias re-runs it)."""
    uri = args.get("compare_to")
    return {"champion": _resolve_champion(uri) if uri else None}


def _gate_step():  # noqa: ANN202
    from mloop.pipelines.language import Step

    global _GATE_STEP
    if _GATE_STEP is None:
        _GATE_STEP = Step(_run_gate, name="gate", _key_extra=_champion_key, _kind="gate")
    return _GATE_STEP


_GATE_STEP = None


def gate(metrics: dict[str, float] | None = None, *, require: dict[str, Any] | None = None,
         compare_to: str | None = None, candidate: Any = None, eval_data: Any = None, target: str | None = None,
         max_regression: dict[str, float] | None = None, maximize: list[str] | tuple[str, ...] = (),
         minimize: list[str] | tuple[str, ...] = (), task: str | None = None) -> Any:
    """Check a candidate; returns a GateReport, or raises GateFailed whose message is the criteria table.

    Inside a pipeline body (with step outputs as arguments) this adds a gate step and returns its lazy
    report; inside a step it runs at once and the step's record keeps the report.
    """
    from mloop.pipelines.language import tracing

    if tracing() is not None:
        return _gate_step()(metrics, require=require, compare_to=compare_to, candidate=candidate,
                            eval_data=eval_data, target=target, max_regression=max_regression,
                            maximize=list(maximize), minimize=list(minimize), task=task)
    report = evaluate_gate(metrics, require=require, compare_to=compare_to, candidate=candidate,
                           eval_data=eval_data, target=target, max_regression=max_regression, maximize=maximize,
                           minimize=minimize, task=task)
    from mloop.pipelines.execute import record_gate

    record_gate(report.to_dict())
    if not report.passed:
        failed = [c["criterion"] for c in report.criteria if c["verdict"] == "fail"]
        err = GateFailed(f"quality gate failed ({'; '.join(failed)}):\n{report.table()}")
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report


__all__ = ["GateReport", "evaluate_gate", "gate", "MAXIMIZED", "MINIMIZED"]
