"""The demo's validation stage: from the stored training version, a fresh batch passes, the broken
one is caught, and with the suite attached its `add` is refused."""

from __future__ import annotations

import importlib

from rich.console import Console

import mloop
from mloop.demo import DemoContext
from mloop.demo.data import generate_churn


def test_validation_stage_on_the_training_version():
    ctx = DemoContext(quick=True, seed=7, console=Console(record=True, width=160))
    ctx.state["train_uri"] = mloop.data.add(generate_churn(ctx.rows, seed=7), name="demo-churn-train").uri
    importlib.import_module("mloop.demo.stages.30_validation").run(ctx)
    assert ctx.state["suite_name"] == "demo-churn@1"
    assert ctx.state["validation"] == {
        "fresh_ok": True, "broken_ok": False, "refused": True,
        "broken_failed": ["not_null:monthly_charges", "between:age", "no_unseen_categories:region"],
    }
    text = ctx.console.export_text()
    assert "broken batch caught" in text and "atlantis" in text
    assert mloop.data.get("demo-churn-batches@latest").version == 1
