"""The pipeline language: DAG construction, lazy outputs, definition-time errors."""

from __future__ import annotations

import pytest

import mloop
from mloop.errors import InvalidInput
from mloop.pipelines import DAG, Node
from mloop.store.db import get_store
from mloop.store.pipelines import PipelineRunRepo


@mloop.step
def source(n: int = 3):
    return list(range(n))


@mloop.step(outputs=("evens", "odds"))
def split(xs):
    return [x for x in xs if x % 2 == 0], [x for x in xs if x % 2]


@mloop.step
def add(a, b):
    return sum(a) + sum(b)


@mloop.step
def combine(parts: list, scale: float = 1.0):
    return [p * scale for p in parts]


def test_fan_out_fan_in_dag_and_names():
    @mloop.pipeline(name="shape")
    def shape(n: int = 4):
        xs = source(n)
        evens, odds = split(xs)
        left = add(evens, odds)
        right = add(odds, evens)
        return combine([left, right], scale=2.0)

    dag = shape.dag(n=5)
    order = [node.name for node in dag.order()]
    assert order == ["source", "split", "add", "add-2", "combine"]
    assert dag.nodes["split"].upstream == ["source"]
    assert dag.nodes["add"].upstream == ["split"]
    assert dag.nodes["combine"].upstream == ["add", "add-2"]
    assert dag.nodes["combine"].args["scale"] == 2.0
    assert dag.downstream("split") == ["add", "add-2", "combine"]

    run = shape.run(n=5)
    assert run.status == "COMPLETED"
    # evens 0+2+4=6, odds 1+3=4 -> 10 each, scaled by 2
    assert run.outputs["output"] == [20.0, 20.0]
    assert [s.name for s in run.steps] == order


def test_step_outside_a_pipeline_is_a_plain_function():
    assert add([1, 2], [3]) == 6
    assert split([1, 2, 3]) == ([2], [1, 3])


@pytest.mark.parametrize("use", [bool, iter, len, lambda x: x + 1, lambda x: x.shape, lambda x: x[0]])
def test_using_a_lazy_output_in_the_body_says_why(use):
    with pytest.raises(InvalidInput, match="output of step 'source'.*Move this logic into a @mloop.step"):
        @mloop.pipeline(name="bad-body")  # refused where it is defined
        def bad():
            xs = source()
            use(xs)
            return xs


def test_if_on_a_lazy_output_is_refused_at_definition_or_at_run():
    with pytest.raises(InvalidInput, match=r"bool\(\)"):
        @mloop.pipeline(name="branchy")
        def branchy():
            xs = source()
            if xs:
                return xs
            return None

    @mloop.pipeline(name="branchy-later")
    def later(n: int):  # no defaults: checked when it runs
        xs = source(n)
        return xs if xs else None

    with pytest.raises(InvalidInput, match=r"bool\(\)"):
        later.run(n=2)
    assert PipelineRunRepo(get_store()).list() == []  # nothing half-recorded


def test_non_step_value_where_an_output_is_expected():
    with pytest.raises(InvalidInput, match="where a step output is expected"):
        @mloop.pipeline(name="returns-data")
        def returns_data():
            source()
            return [1, 2, 3]

    with pytest.raises(InvalidInput, match="the step 'source' itself, not its output"):
        @mloop.pipeline(name="passes-step")
        def passes_step():
            return add(source, source())

    @mloop.pipeline(name="returns-data-later")
    def later(n: int):
        source(n)
        return {"rows": n}

    with pytest.raises(InvalidInput, match="returns int 3 as 'rows', where a step output is expected"):
        later.run(n=3)
    assert PipelineRunRepo(get_store()).list() == []


def test_a_pipeline_inside_a_pipeline_body_is_refused():
    @mloop.pipeline(name="inner")
    def inner(n: int = 2):
        return source(n)

    with pytest.raises(InvalidInput, match="called inside another pipeline's body"):
        @mloop.pipeline(name="outer")
        def outer():
            return inner()
    assert PipelineRunRepo(get_store()).list() == []


def test_cycle_and_dangling_edge_are_refused():
    dag = DAG()
    dag.add(Node("a", source, {}, ["c"]))
    dag.add(Node("b", source, {}, ["a"]))
    dag.add(Node("c", source, {}, ["b"]))
    with pytest.raises(InvalidInput, match="cycle: a -> c -> b -> a"):
        dag.order()
    lone = DAG()
    lone.add(Node("x", source, {}, ["ghost"]))
    with pytest.raises(InvalidInput, match="'ghost', which is not a step"):
        lone.order()


def test_reserved_names_and_bad_options():
    with pytest.raises(InvalidInput, match="reserved"):
        @mloop.pipeline(name="r")
        def r(cache: bool = True):
            return source()
    with pytest.raises(InvalidInput, match="retries"):
        mloop.step(retries=-1)(lambda: 1)
    with pytest.raises(InvalidInput, match="unknown resource"):
        mloop.step(resources={"cpu": 1})(lambda: 1)
    s = mloop.step(resources={"cpus": 2, "memory": "1.5GB"})(lambda: 1)
    assert s.resources == {"cpus": 2, "memory": int(1.5 * 1024**3)}
    with pytest.raises(InvalidInput, match="outputs"):
        mloop.step(outputs=("x", "x"))(lambda: 1)


def test_parameters_must_be_json_and_known():
    @mloop.pipeline(name="params")
    def params(n: int = 2, obj=None):
        return add(source(n), source(obj if obj is not None else n))

    with pytest.raises(InvalidInput, match="not JSON-serialisable"):
        params.run(obj=object())
    with pytest.raises(InvalidInput, match="unexpected keyword|parameters: n, obj"):
        params.run(nope=1)
    assert PipelineRunRepo(get_store()).list() == []


def test_timeout_needs_a_process():
    slow = mloop.step(timeout=5)(lambda: 1)

    @mloop.pipeline(name="timed")
    def timed():
        return slow()

    with pytest.raises(InvalidInput, match="timeout=5, which needs a process"):
        timed.run(executor="local")


def test_multiple_outputs_must_match_the_declaration():
    @mloop.step(outputs=("a", "b"))
    def three():
        return 1, 2, 3

    @mloop.pipeline(name="wrong-arity")
    def wrong():
        a, _ = three()
        return a

    run = wrong.run(raise_on_failure=False)
    assert run.status == "FAILED"
    assert "declares outputs ['a', 'b'] but returned tuple of length 3" in run.step("three").error


def test_public_names():
    assert mloop.step is mloop.pipelines.step
    assert mloop.DatasetRef("churn@2") == "datasets:/churn@2"
    for name in ("step", "pipeline", "gate", "steps", "DatasetRef"):
        assert name in mloop.__all__
    assert callable(mloop.steps.register)
