"""Stage: register the best run's model, make it @champion, evaluate it on the validation split."""

from __future__ import annotations

TITLE = "registry: register the best model, promote it to @champion, evaluate"
MODEL = "churn"


def run(ctx) -> None:  # noqa: ANN001
    import mloop

    features, target = ctx.state["features"], ctx.state["target"]
    train = ctx.state["train_df"]
    # the grid stage trained on rows with missing ages filled by the training median; score alike
    fill = {c: train[c].median() for c in features if train[c].dtype.kind == "f" and train[c].isna().any()}
    valid = ctx.state["valid_df"].fillna(fill)
    example = train[features].head(5)
    best_run = mloop.get_run(ctx.state["best_run_id"])
    mv = mloop.models.log_model(ctx.state["best_model"], MODEL, run=best_run, input_example=example, register=True,
                                validation_data=valid[[*features, target]], tags={"stage": "demo"},
                                description="logistic regression on the churn demo data")
    mloop.models.set_alias(MODEL, "champion", mv.version, reason=f"best grid run {best_run.name}")
    champion = mloop.models.get(f"{MODEL}@champion")
    ctx.say(f"registered [bold]{MODEL}/{mv.version}[/bold] from run {best_run.name}; "
            f"@champion -> {champion.version}")
    metrics = mloop.evaluate(f"{MODEL}@champion", valid[[*features, target]], target)
    ctx.table("champion on the validation split", ["metric", "value"], [[k, v] for k, v in metrics.items()])
    model = mloop.models.load(f"{MODEL}@champion")
    sample = valid[features].head(3)
    ctx.table("three predictions", ["row", "prediction", *model.proba_columns],
              [[i, p, *row] for i, (p, row) in enumerate(zip(model.predict(sample),
                                                              model.predict_proba(sample).to_numpy().round(3),
                                                              strict=True))])
    ctx.state.update(champion_uri=f"{MODEL}@champion", champion_version=champion.version,
                     champion_metrics=metrics)
