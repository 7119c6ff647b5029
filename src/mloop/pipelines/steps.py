"""Ready-made steps (`mloop.steps`): `register` logs a model with the step's run, registers a new
version and moves an alias to it.

    >>> @mloop.pipeline(name="churn")
    ... def churn():
    ...     model = train(load())
    ...     mloop.steps.register(model, name="churn", alias="challenger")
"""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInput
from mloop.pipelines.language import Step


def _register(model: Any, name: str, alias: str | None = "challenger", promote: bool = False,
              input_example: Any = None, reason: str | None = None, gate: Any = None) -> dict:
    import mloop
    from mloop import registry
    from mloop.errors import GateFailed

    if not isinstance(name, str) or not name:
        raise InvalidInput(f"steps.register needs name= (the registered model's name), got {name!r}")
    reports = gate if isinstance(gate, list) else [gate] if gate is not None else []
    for report in reports:  # passing gate reports orders registration after the gates
        passed = report.get("passed") if isinstance(report, dict) else getattr(report, "passed", None)
        if passed is False:
            raise GateFailed(f"not registering {name!r}: a gate it depends on failed")
    run = mloop.active_run()
    kwargs: dict[str, Any] = {"run": run, "register": True}
    if input_example is not None:
        kwargs["input_example"] = input_example
    mv = registry.log_model(model, name=name, **kwargs)
    aliases = []
    if alias:
        registry.set_alias(name, alias, mv.version, reason=reason or "registered by a pipeline step")
        aliases.append(alias)
    if promote and alias != "champion":
        registry.set_alias(name, "champion", mv.version, reason=reason or "promoted by a pipeline step")
        aliases.append("champion")
    return {"uri": f"models:/{mv.name}/{mv.version}", "name": mv.name, "version": int(mv.version), "aliases": aliases,
            "digest": getattr(mv, "digest", None)}


register = Step(_register, name="register")
register.__doc__ = """Register a model: `mloop.steps.register(model, name="churn", alias="challenger", promote=False)`.

Logs the model with the step's run, registers it as a new version of `name`, moves `alias` to it
(and `champion` too with `promote=True`). Pass `gate=report` (a gate's output, or a list of them) to
register only after, and only if, those gates passed. Returns {"uri", "name", "version", "aliases",
"digest"}.
"""

__all__ = ["register"]
