"""Stage: train a scikit-learn model over a small grid, tracking every run."""

from __future__ import annotations

import itertools

TITLE = "tracking: a small grid search, every run tracked"
EXPERIMENT = "demo-churn"


def run(ctx) -> None:  # noqa: ANN001
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import mloop
    from mloop.demo.data import CATEGORICAL, FEATURES, NUMERIC, TARGET, generate_churn

    df = ctx.state.get("train_df")
    if df is None:
        df = generate_churn(ctx.rows, seed=ctx.seed)
        ctx.state["train_df"] = df
    cut = int(len(df) * 0.8)
    train, valid = df.iloc[:cut], df.iloc[cut:]
    X, y = train[FEATURES].fillna({"age": train["age"].median()}), train[TARGET]
    Xv, yv = valid[FEATURES].fillna({"age": train["age"].median()}), valid[TARGET]

    grid = {"C": [0.1, 1.0] if ctx.quick else [0.03, 0.1, 0.3, 1.0, 3.0], "class_weight": [None, "balanced"]}
    run_ids = []
    for C, weight in itertools.product(grid["C"], grid["class_weight"]):
        params = {"C": C, "class_weight": weight, "rows": len(train)}
        with mloop.start_run(experiment=EXPERIMENT, name=f"lr-C{C}-{weight or 'none'}", params=params,
                             tags={"stage": "grid", "model": "logistic-regression"}) as run:
            model = Pipeline([
                ("prep", ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])),
                ("clf", LogisticRegression(C=C, class_weight=weight, max_iter=500)),
            ])
            model.fit(X, y)
            for step, frac in enumerate(np.linspace(0.25, 1.0, 4), start=1):
                part = Xv.iloc[: int(len(Xv) * frac)]
                run.log_metric("valid_auc", roc_auc_score(yv.iloc[: len(part)], model.predict_proba(part)[:, 1]), step=step)
            proba = model.predict_proba(Xv)[:, 1]
            run.log_metrics({"auc": roc_auc_score(yv, proba), "accuracy": accuracy_score(yv, proba > 0.5),
                             "log_loss": log_loss(yv, proba)})
            run_ids.append(run.id)
            ctx.state.setdefault("models", {})[run.id] = model

    runs = mloop.search_runs(experiment=EXPERIMENT, filter="tags.stage = 'grid'", order_by=["metrics.auc DESC"],
                             limit=len(run_ids))
    ctx.table("runs (best first)", ["run", "C", "class_weight", "auc", "accuracy", "log_loss"],
          [[r.name, r.params["C"], r.params["class_weight"], r.metrics["auc"], r.metrics["accuracy"],
            r.metrics["log_loss"]] for r in runs])
    best = runs[0]
    ctx.state.update(best_run_id=best.id, best_model=ctx.state["models"][best.id], features=FEATURES,
                     target=TARGET, valid_df=valid)
    ctx.say(f"best run: [bold]{best.name}[/bold] ({best.id}) auc={best.metrics['auc']:.4f}")
