"""Declared dataset inputs: DatasetRef parameters pinned at run start, lineage edges, re-resolved
every run (@latest moves), dataset-URI step parameters keyed by digest."""

from __future__ import annotations

import pandas as pd
import pytest

import mloop
from mloop.errors import NotFound
from mloop.store.db import get_store
from mloop.store.lineage import LineageRepo

SEEN: list = []


@mloop.step
def rows(data: str):
    SEEN.append(str(data))
    return int(len(mloop.data.use(data).to_pandas()))


@mloop.step
def double(n: int):
    return 2 * n


@mloop.pipeline(name="with-data")
def with_data(data: mloop.DatasetRef = "tbl@latest"):
    return double(rows(data))


def _edges_into(kind: str, ident: str) -> set[tuple[str, str]]:
    return {(e.from_id, e.relation) for e in LineageRepo(get_store()).edges((kind, ident), "in")}


def test_declared_inputs_are_pinned_linked_and_re_resolved(tracking_uri):
    SEEN.clear()
    mloop.data.add(pd.DataFrame({"x": range(5)}), name="tbl")
    first = with_data.run()
    assert first.inputs == {"data": "datasets:/tbl@1"} and first.params == {"data": "datasets:/tbl@1"}
    assert SEEN == ["datasets:/tbl@1"] and first.outputs["output"] == 10
    assert ("tbl/1", "input") in _edges_into("run", first.id)
    assert ("tbl/1", "input") in _edges_into("pipeline_run", first.id)
    assert ("tbl/1", "input") in _edges_into("run", first.step("rows").run_id)  # the step that read it

    again = with_data.run()
    assert set(again.cached_steps) == {"rows", "double"}

    mloop.data.add(pd.DataFrame({"x": range(8)}), name="tbl")  # @latest moves
    moved = with_data.run()
    assert moved.inputs == {"data": "datasets:/tbl@2"}
    assert moved.executed_steps == ["rows", "double"] and moved.outputs["output"] == 16
    pinned = with_data.run(data="tbl@1")
    assert pinned.cached_steps == ["rows", "double"] and pinned.outputs["output"] == 10


def test_dataset_uri_step_parameters_are_keyed_by_digest():
    @mloop.pipeline(name="literal-uri")
    def literal():
        return rows("datasets:/lit@latest")

    mloop.data.add(pd.DataFrame({"x": [1, 2]}), name="lit")
    assert literal.run().outputs["output"] == 2
    assert literal.run().cached_steps == ["rows"]
    mloop.data.add(pd.DataFrame({"x": [1, 2, 3]}), name="lit")
    run = literal.run()
    assert run.executed_steps == ["rows"] and run.outputs["output"] == 3


def test_an_unknown_dataset_fails_before_anything_is_recorded():
    with pytest.raises(NotFound):
        with_data.run(data="nope@latest")
    assert mloop.pipelines.list_runs() == []
