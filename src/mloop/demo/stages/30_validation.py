"""Stage: infer a suite from the training data, pass a fresh batch, catch a broken one."""

from __future__ import annotations

TITLE = "validation: a suite inferred from the training data; a fresh batch passes, a broken one is caught"
SUITE = "demo-churn"
MARGIN = 0.5  # generous: a fresh daily batch of another seed must not trip on tail values


def run(ctx) -> None:  # noqa: ANN001
    import numpy as np
    import pandas as pd

    import mloop
    from mloop.demo.data import generate_churn

    reference = ctx.state.get("train_df")
    if ctx.state.get("train_uri"):
        reference = mloop.data.get(ctx.state["train_uri"])
    elif reference is None:
        reference = generate_churn(ctx.rows, seed=ctx.seed)
        ctx.state["train_df"] = reference
    suite = mloop.validation.save_suite(mloop.validation.infer_suite(reference, margin=MARGIN), SUITE)
    ctx.state["suite_name"] = f"{suite.name}@{suite.version}"
    ctx.say(f"inferred suite [bold]{ctx.state['suite_name']}[/bold]: {len(suite)} expectations "
            f"(dtypes, nulls, ranges, category sets, unique ids; row count and statistics as warnings)")

    start = pd.Timestamp("2026-01-01") + pd.Timedelta(days=31)
    fresh = generate_churn(ctx.rows // 4, seed=ctx.seed + 1, start=str(start.date()), days=7)
    good = suite.validate(fresh)
    ctx.say(f"fresh batch ({len(fresh):,} rows): [green]{good.summary()}[/green]" if good.ok
            else f"fresh batch: [red]{good.summary()}[/red]")

    broken = fresh.copy()
    rng = np.random.default_rng(ctx.seed)
    broken.loc[rng.uniform(size=len(broken)) < 0.05, "monthly_charges"] = np.nan   # nulls where none were
    broken.loc[broken.index[::50], "age"] = 250.0                                   # out of range
    broken.loc[broken.index[7:19], "region"] = "atlantis"                           # an unseen category
    bad = suite.validate(broken)
    shown = [r for r in bad.results if r.status != "pass"]
    from mloop.validation.results import ValidationResult

    ctx.console.print(ValidationResult(suite=bad.suite, source="broken batch", rows=bad.rows, results=shown))
    ctx.say(("[bold red]broken batch caught[/bold red]: " if not bad.ok else "[yellow]not caught[/yellow]: ")
            + ", ".join(r.name for r in bad.failed))
    ctx.state["validation"] = {"fresh_ok": good.ok, "broken_ok": bad.ok, "broken_failed": [r.name for r in bad.failed]}
