"""`mloop ci`: validate a pipeline's declared input datasets against their attached suites, run the
pipeline, apply its gates, and write a Markdown report (candidate vs champion with deltas, the
validation summary, the runs) to `$GITHUB_STEP_SUMMARY` when set, else to a file.

Exit codes: 0 passed; 1 a gate or a validation failed; 2 bad input (including a missing champion
without `--first-model`: a fresh CI runner's empty embedded store must not pass every gate);
3 a runtime failure (a step crashed).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, MloopError, NotFound, ValidationFailed

log = logging.getLogger(__name__)
DEFAULT_REPORT = "mloop-ci-report.md"


@dataclass
class CIResult:
    """The outcome of `mloop ci`: exit code, one-line reason, the report and where it went."""

    exit_code: int
    reason: str
    markdown: str = ""
    report_path: str | None = None
    run: Any = None
    validations: list[dict] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)


def parse_params(pipeline: Any, pairs: list[str]) -> dict[str, Any]:
    """`["C=0.5", "data=datasets:/churn@2"]` -> typed values (by the parameter's annotation, else JSON)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"a parameter is key=value, got {pair!r}")
        param = pipeline.signature.parameters.get(key)
        annotation = param.annotation if param is not None else None
        out[key] = _cast(key, text, annotation)
    return out


def _cast(key: str, text: str, annotation: Any) -> Any:
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    name = str(name).split(".")[-1].replace(" ", "")
    try:
        if name == "int":
            return int(text)
        if name == "float":
            return float(text)
        if name == "bool":
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if name in ("str", "DatasetRef"):
            return text
    except ValueError as exc:
        raise InvalidInput(f"parameter {key}={text!r} is not a valid {name}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def validate_inputs(pipeline: Any, params: dict[str, Any]) -> list[dict]:
    """Each declared input dataset checked against its attached suite (no suite: recorded as such)."""
    from mloop.pipelines.runner import resolve_dataset

    bound = pipeline.bind(params)
    out = []
    for key in pipeline.dataset_params(bound):
        pinned, dv_id, _digest = resolve_dataset(bound[key])
        name = dv_id.rsplit("/", 1)[0]
        entry: dict[str, Any] = {"param": key, "dataset": str(pinned), "suite": None, "ok": True, "failed": [],
                                 "checks": 0}
        try:
            from mloop import validation
        except ImportError:  # validation not part of this build
            entry["note"] = "validation is not installed"
            out.append(entry)
            continue
        suite = validation.attached_suite(name)
        if suite is None:
            entry["note"] = "no suite attached"
            out.append(entry)
            continue
        import mloop

        frame = mloop.data.get(str(pinned)).to_pandas()
        result = suite.validate(frame)
        entry["suite"] = getattr(suite, "name", None) or "attached"
        entry["ok"] = bool(result.ok)
        results = list(getattr(result, "results", []) or [])
        entry["checks"] = len(results)
        entry["failed"] = [_describe_check(r) for r in results if not _passed(r)]
        out.append(entry)
    return out


def _passed(r: Any) -> bool:
    """An expectation counts as failed only when it failed at error severity (warnings pass)."""
    if isinstance(r, dict):
        return bool(r.get("passed", True)) or r.get("severity") != "error"
    return bool(getattr(r, "passed", True)) or getattr(r, "severity", "error") != "error"


def _describe_check(r: Any) -> str:
    if isinstance(r, dict):
        return str(r.get("name") or r)
    name = getattr(r, "name", None) or type(r).__name__
    message = getattr(r, "message", "")
    return f"{name} ({message})" if message else str(name)


def _gate_nodes(pipeline: Any, params: dict[str, Any]) -> list[dict]:
    """The compare_to of every gate written in the pipeline body (gates inside steps are seen after the run)."""
    try:
        dag = pipeline.dag(**params)
    except MloopError:
        return []
    return [n.args for n in dag.nodes.values() if n.step.kind == "gate"]


def _champion_exists(uri: str) -> bool:
    from mloop.pipelines.gates import _resolve_champion

    return _resolve_champion(uri) is not None


def _no_champion(uri: str) -> InvalidInput:
    from mloop.config import get_settings
    from mloop.store.db import redact

    store = redact(get_settings().tracking_uri)
    return InvalidInput(
        f"no champion {uri!r} in the metadata store {store}; a CI runner needs the team's store "
        "(set MLOOP_TRACKING_URI and MLOOP_ARTIFACT_URI), or pass --first-model to accept the first model"
    )


def run_ci(spec: str, params: list[str] | dict[str, Any] | None = None, *, promote: bool = False,
           first_model: bool = False, executor: Any = None, report: str | os.PathLike | None = None,
           use_cache: bool = True) -> CIResult:
    """Run the CI flow and write the report; never raises for a failed check (see the exit code)."""
    from mloop.pipelines.loader import load_pipeline

    result = CIResult(exit_code=0, reason="")
    try:
        pipeline = load_pipeline(spec)
        values = parse_params(pipeline, params) if isinstance(params, list) else dict(params or {})
        result.validations = validate_inputs(pipeline, values)
        bad = [v for v in result.validations if not v["ok"]]
        if bad:
            result.exit_code, result.reason = 1, "validation failed: " + ", ".join(v["dataset"] for v in bad)
            return _finish(result, pipeline.name, report)
        if not first_model:
            for args in _gate_nodes(pipeline, pipeline.bind(values)):
                uri = args.get("compare_to")
                if isinstance(uri, str) and not _champion_exists(uri):
                    raise _no_champion(uri)
        run = pipeline.run(executor=executor, cache=use_cache, raise_on_failure=False, **values)
        result.run = run
        missing = [g.get("compare_to") for g in run.gates if g.get("champion_missing")]
        if missing and not first_model:
            raise _no_champion(missing[0])
        if not run.ok:
            result.exit_code, result.reason = _failure_code(run)
            return _finish(result, pipeline.name, report)
        if promote:
            result.promoted = _promote(run)
        result.reason = "passed"
        return _finish(result, pipeline.name, report)
    except (InvalidInput, NotFound) as exc:
        result.exit_code, result.reason = 2, str(exc)
    except ValidationFailed as exc:
        result.exit_code, result.reason = 1, str(exc)
    except MloopError as exc:
        result.exit_code, result.reason = exc.exit_code, str(exc)
    except Exception as exc:  # noqa: BLE001  (a crash is exit 3 with the reason in the report)
        log.exception("mloop ci failed")
        result.exit_code, result.reason = 3, f"{type(exc).__name__}: {exc}"
    return _finish(result, getattr(locals().get("pipeline"), "name", spec), report)


def _failure_code(run: Any) -> tuple[int, str]:
    failed = [s for s in run.steps if s.status == "FAILED"]
    if not failed:
        return 3, f"pipeline run {run.id} is {run.status}"
    step = failed[0]
    error = step.error or ""
    if step.gates and not all(g.get("passed") for g in step.gates) or "mloop.errors.GateFailed:" in error:
        return 1, f"quality gate failed in step {step.name!r}"
    if "mloop.errors.ValidationFailed:" in error:
        return 1, f"validation failed in step {step.name!r}"
    lines = [line for line in error.strip().splitlines() if line.strip()]
    for marker in ("InvalidInput", "NotFound"):
        prefix = f"mloop.errors.{marker}:"
        hits = [line for line in lines if line.startswith(prefix)]
        if hits:
            return 2, f"step {step.name!r}: {hits[-1][len('mloop.errors.'):]}"
    return 3, f"step {step.name!r} failed: {lines[-1] if lines else 'unknown error'}"


def _promote(run: Any) -> list[str]:
    """Move `champion` to every model version the run registered."""
    import mloop

    found = list(run.models)
    for s in run.steps:
        out = s.outputs.get("output") if s.step.endswith("._register") else None
        if out and out.get("kind") == "json":
            from mloop.pipelines import materialize

            value = materialize.load(out)
            if isinstance(value, dict) and value.get("uri"):
                found.append(value["uri"].removeprefix("models:/"))
    promoted = []
    for mv in dict.fromkeys(found):
        name, _, version = mv.rpartition("/")
        mloop.models.set_alias(name, "champion", int(version), reason=f"mloop ci --promote (pipeline run {run.id})")
        promoted.append(f"models:/{name}/{version}")
    return promoted


# -- the report ------------------------------------------------------------------------------------
def render(result: CIResult, pipeline: str) -> str:
    """The Markdown report."""
    from mloop.pipelines.gates import GateReport

    icon = {0: "✅ passed", 1: "❌ failed", 2: "⚠️ bad input", 3: "💥 error"}[result.exit_code if result.exit_code in (0, 1, 2, 3) else 3]
    lines = [f"# mloop ci — `{pipeline}`: {icon}", "", f"**Result:** {result.reason}", ""]
    run = result.run
    if run is not None:
        lines += [f"- pipeline run: `{run.id}` ({run.status}, {run.duration_s or 0:.2f} s, executor `{run.executor}`)",
                  f"- tracking run: `runs:/{run.run_id}` — `mloop runs show {run.run_id}`",
                  f"- steps: `mloop pipeline show {run.id}`"]
        if run.params:
            lines.append("- parameters: " + ", ".join(f"`{k}={v}`" for k, v in run.params.items()))
        lines.append("")
    if result.validations:
        lines += ["## Validation of input datasets", "", "| parameter | dataset | suite | checks | verdict |",
                  "|---|---|---|---|---|"]
        for v in result.validations:
            verdict = "✅ pass" if v["ok"] else "❌ fail: " + "; ".join(v["failed"][:5])
            lines.append(f"| {v['param']} | `{v['dataset']}` | {v['suite'] or v.get('note', '')} | {v['checks']} | {verdict} |")
        lines.append("")
    gates = run.gates if run is not None else []
    for i, data in enumerate(gates, start=1):
        report = GateReport.from_dict(data)
        title = f"## Gate {i}: {'✅ passed' if report.passed else '❌ failed'}"
        lines += [title, ""]
        if report.compare_to:
            champ = report.champion or "none yet"
            lines += [f"Candidate `{report.candidate or 'model'}` vs champion `{report.compare_to}` (`{champ}`), "
                      "both evaluated on the same data.", ""]
        lines += [report.to_markdown(), ""]
        metrics = sorted(set(report.candidate_metrics) | set(report.champion_metrics))
        if metrics and report.champion_metrics:
            lines += ["| metric | candidate | champion | delta |", "|---|---|---|---|"]
            for m in metrics:
                c, h = report.candidate_metrics.get(m), report.champion_metrics.get(m)
                delta = f"{c - h:+.4f}" if c is not None and h is not None else "—"
                lines.append(f"| {m} | {_fmt(c)} | {_fmt(h)} | {delta} |")
            lines.append("")
    if run is not None:
        lines += ["## Steps", "", "| step | status | duration | run |", "|---|---|---|---|"]
        for s in run.steps:
            dur = "cached" if s.status == "CACHED" else (f"{s.duration_s:.2f} s" if s.duration_s is not None else "")
            lines.append(f"| {s.name} | {s.status} | {dur} | {('`' + s.run_id + '`') if s.run_id else ''} |")
        lines.append("")
        failed = [s for s in run.steps if s.status == "FAILED" and s.error]
        for s in failed[:1]:
            lines += [f"<details><summary>error in step {s.name}</summary>", "", "```", s.error[-4000:], "```",
                      "</details>", ""]
    if result.promoted:
        lines += ["## Promoted", ""] + [f"- `{m}` is now `@champion`" for m in result.promoted] + [""]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}"


def _finish(result: CIResult, pipeline: str, report: str | os.PathLike | None) -> CIResult:
    result.markdown = render(result, pipeline)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    try:
        if summary and report is None:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(result.markdown + "\n")
            result.report_path = summary
        else:
            path = Path(report or DEFAULT_REPORT)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(result.markdown + "\n", encoding="utf-8")
            result.report_path = str(path)
    except OSError as exc:
        log.error("could not write the CI report: %s", exc)
    return result


__all__ = ["CIResult", "parse_params", "render", "run_ci", "validate_inputs"]
