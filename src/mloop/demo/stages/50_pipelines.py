"""Stage: the training as a pipeline — load → validate → features → train → evaluate → gate →
register — run twice; the second run is fully cached (same code, same data version, same champion)."""

from __future__ import annotations

import mloop

TITLE = "pipelines: training as a cached DAG (load → validate → features → train → evaluate → gate → register)"
MODEL = "churn"


@mloop.step
def load(data: str):
    """Read the pinned dataset version (an `input` lineage edge to the step's run)."""
    return mloop.data.use(data).to_pandas()


@mloop.step
def validate(df, suite: str):
    """Check the data against the suite inferred in the validation stage."""
    from mloop.errors import ValidationFailed

    result = mloop.validation.get_suite(suite).validate(df)
    if not result.ok:
        raise ValidationFailed(result.summary())
    return {"ok": True, "expectations": len(result.results)}


@mloop.step(outputs=("train", "valid"))
def features(df, checked: dict, split: float = 0.8):
    from mloop.demo.data import FEATURES, TARGET

    cut = int(len(df) * split)
    train, valid = df.iloc[:cut], df.iloc[cut:]
    fill = {"age": float(train["age"].median())}
    return train[[*FEATURES, TARGET]].fillna(fill), valid[[*FEATURES, TARGET]].fillna(fill)


@mloop.step
def train(train, C: float):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mloop.demo.data import CATEGORICAL, FEATURES, NUMERIC, TARGET

    model = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])),
        ("clf", LogisticRegression(C=C, max_iter=500)),
    ])
    return model.fit(train[FEATURES], train[TARGET])


@mloop.step
def evaluate(model, valid):
    from mloop.demo.data import TARGET

    return mloop.evaluate(model, valid, TARGET)


@mloop.pipeline(name="demo-churn-training")
def training(data: mloop.DatasetRef = "demo-churn-train@latest", suite: str = "demo-churn", C: float = 1.0):
    df = load(data)
    tr, va = features(df, validate(df, suite))
    model = train(tr, C)
    metrics = evaluate(model, va)
    report = mloop.gate(metrics, require={"roc_auc": ">= 0.6"}, compare_to=f"{MODEL}@champion", candidate=model,
                        eval_data=va, target="churned", max_regression={"roc_auc": 0.05})
    return {"metrics": metrics, "report": report,
            "registered": mloop.steps.register(model, name=MODEL, alias="challenger", gate=report)}


def run(ctx) -> None:  # noqa: ANN001
    suite = (ctx.state.get("suite_name") or "demo-churn").split("@")[0]
    params = {"suite": suite, "C": 1.0}
    if ctx.state.get("train_uri"):
        params["data"] = ctx.state["train_uri"]
    first = training.run(**params)
    ctx.say("first run (every step executes):")
    ctx.console.print(first.tree(), highlight=False)
    second = training.run(**params)
    ctx.say("second run (same code, same data version, same champion):")
    ctx.console.print(second.tree(), highlight=False)
    cached = len(second.cached_steps)
    registered = first.outputs["registered"]
    gate = first.outputs["report"]
    champion = gate.get("champion") or "none"
    ctx.say(f"{cached}/{len(second.steps)} steps cached on the second run "
            f"({second.duration_s:.2f} s vs {first.duration_s:.2f} s); candidate roc_auc "
            f"{gate['candidate_metrics'].get('roc_auc', float('nan')):.4f} vs champion {champion}; registered "
            f"[bold]{registered['uri']}[/bold] as @challenger")
    ctx.state.update(pipeline_run_id=first.id, pipeline_cached=cached == len(second.steps),
                     challenger_uri=registered["uri"])
