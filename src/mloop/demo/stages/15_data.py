"""Stage: version the training data; the best run records which version it trained on."""

from __future__ import annotations

TITLE = "data: the training data versioned (content-addressed, profiled); the best run records it"
DATASET = "demo-churn-train"


def run(ctx) -> None:  # noqa: ANN001
    import mloop
    from mloop.demo.data import generate_churn

    df = ctx.state.get("train_df")
    if df is None:
        df = generate_churn(ctx.rows, seed=ctx.seed)
        ctx.state["train_df"] = df
    dv = mloop.data.add(df, name=DATASET, message="generated churn training data")
    again = mloop.data.add(df, name=DATASET)  # identical content: the same version comes back
    run_id = ctx.state.get("best_run_id")
    if run_id:
        mloop.data.use(dv.uri, run=run_id)
    ctx.state["train_uri"] = dv.uri
    verb = "added" if dv.created else "unchanged"
    ctx.say(f"{verb} [bold]{dv.uri}[/bold]: {dv.rows:,} rows, {dv.digest[:19]}…; re-adding the same frame "
            f"returns version {again.version} ({'new' if again.created else 'deduplicated'})")
    profile = dv.profile
    numeric = [(n, c) for n, c in profile.columns.items() if c["kind"] == "numeric"][:5]
    ctx.table("profile (numeric columns)", ["column", "nulls", "mean", "std", "p5", "p95", "unique"],
          [[n, c["nulls"], c["mean"], c["std"], c["quantiles"]["0.05"], c["quantiles"]["0.95"], c["unique"]]
           for n, c in numeric])
    if run_id:
        ctx.say(f"run {run_id[:12]} <-input- {dv.name}/{dv.version} (lineage)")
