"""Stage: infer a suite from the training version; a fresh batch passes, a broken one is caught,
and with the suite attached to the batch dataset the broken batch cannot even be added."""

from __future__ import annotations

TITLE = "validation: a suite inferred from the training data; a fresh batch passes, a broken one is caught"
SUITE = "demo-churn"
BATCHES = "demo-churn-batches"
MARGIN = 0.5  # generous: a fresh batch of another seed must not trip on the tails of long-tailed columns


def run(ctx) -> None:  # noqa: ANN001
    import numpy as np

    import mloop
    from mloop.demo.data import generate_churn
    from mloop.errors import ValidationFailed

    if ctx.state.get("train_uri"):
        reference = mloop.data.get(ctx.state["train_uri"])  # its stored profile: nothing is re-read
        where = reference.uri
    else:
        reference = ctx.state.get("train_df")
        if reference is None:
            reference = ctx.state["train_df"] = generate_churn(ctx.rows, seed=ctx.seed)
        where = "the training frame"
    suite = mloop.validation.save_suite(mloop.validation.infer_suite(reference, margin=MARGIN), SUITE)
    ctx.state["suite_name"] = f"{suite.name}@{suite.version}"
    ctx.say(f"inferred suite [bold]{ctx.state['suite_name']}[/bold] from {where}: {len(suite)} expectations "
            "(dtypes, nulls, ranges, category sets, unique ids; row count and statistics as warnings)")

    fresh = generate_churn(ctx.rows // 4, seed=ctx.seed + 1, start="2026-02-01", days=7)
    good = suite.validate(fresh)
    ctx.say(f"fresh batch ({len(fresh):,} rows): " + (f"[green]{good.summary()}[/green]" if good.ok
                                                       else f"[red]{good.summary()}[/red]"))

    broken = fresh.copy()
    rng = np.random.default_rng(ctx.seed)
    broken.loc[rng.uniform(size=len(broken)) < 0.05, "monthly_charges"] = np.nan  # nulls where none were
    broken.loc[broken.index[::50], "age"] = 250.0                                   # out of range
    broken.loc[broken.index[7:19], "region"] = "atlantis"                           # an unseen category
    bad = suite.validate(broken)
    bad.source = "a broken batch"
    ctx.console.print(bad.table(only=("fail", "warn")))
    ctx.say(("[bold red]broken batch caught[/bold red]: " if not bad.ok else "[yellow]not caught[/yellow]: ")
            + ", ".join(r.name for r in bad.failed))

    mloop.validation.attach(SUITE, BATCHES)
    added = mloop.data.add(fresh, name=BATCHES, message="a fresh batch")
    try:
        mloop.data.add(broken, name=BATCHES, message="a broken batch")
        refused = False
    except ValidationFailed:
        refused = True
    ctx.say(f"suite attached to {BATCHES}: the fresh batch was added as {added.uri}; the broken one was "
            + ("[bold red]refused[/bold red]" if refused else "[yellow]accepted[/yellow]"))
    ctx.state["validation"] = {"fresh_ok": good.ok, "broken_ok": bad.ok, "refused": refused,
                               "broken_failed": [r.name for r in bad.failed]}
