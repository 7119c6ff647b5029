"""Suites round-trip through YAML; a bad YAML suite names the line and the key at fault."""

from __future__ import annotations

import textwrap

import pytest

import mloop.validation as V
from mloop.demo.data import generate_churn
from mloop.errors import InvalidInput


def test_every_expectation_round_trips():
    suite = V.Suite([
        V.ColumnPresent(column="a"), V.Dtype(column="a", dtype="double"), V.not_null("a"),
        V.MaxNulls(column="b", fraction=0.25, severity="warn"), V.RowCount(min=1, max=10),
        V.Mean(column="a", min=0.5), V.Std(column="a", max=3.0), V.Quantile(column="a", q=0.9, min=0, max=1),
        V.Unique(column="id"), V.Unique(columns=["a", "b"], mostly=0.9),
        V.Between(column="a", min=0, max=1, min_inclusive=False), V.InSet(column="s", values=["x", "y"]),
        V.NoUnseenCategories(column="s", values=["x"]), V.Regex(column="s", pattern=r"[a-z]+\d*"),
        V.LengthBetween(column="s", min=1, max=5), V.ColumnPair(a="a", b="b", op="<"),
        V.custom("math:isfinite", columns=["a"], name="finite"),
    ], name="everything", description="one of each")
    text = suite.to_yaml()
    back = V.Suite.from_yaml(text)
    assert back == suite
    assert back.to_yaml() == text
    assert [e.key for e in back] == [e.key for e in suite]


def test_inferred_suite_round_trips(tmp_path):
    suite = V.infer_suite(generate_churn(1_500, seed=3), name="churn")
    path = suite.save(tmp_path / "suite.yaml")
    back = V.Suite.load(path)
    assert back == suite
    df = generate_churn(1_500, seed=3)
    assert back.validate(df).to_dict()["results"] == suite.validate(df).to_dict()["results"]


def test_yaml_is_editable_by_hand():
    text = textwrap.dedent("""\
        suite: orders
        expectations:
          - type: max_nulls
            column: order_id
          - type: between
            column: amount
            min: 0
            mostly: 0.99
    """)
    suite = V.Suite.from_yaml(text)
    assert suite.name == "orders"
    assert suite[1].min == 0 and suite[1].mostly == 0.99 and suite[1].max is None


def error_of(text: str) -> str:
    with pytest.raises(InvalidInput) as info:
        V.Suite.from_yaml(textwrap.dedent(text), source="s.yaml")
    return str(info.value)


def test_unknown_type_names_line_and_key():
    msg = error_of("""\
        expectations:
          - type: not_null
            column: a
          - type: betwen
            column: a
    """)
    assert "s.yaml: line 4:" in msg and "unknown expectation type 'betwen'" in msg and "between" in msg


def test_bad_parameter_names_line_and_key():
    msg = error_of("""\
        expectations:
          - type: between
            column: a
            minimum: 3
    """)
    assert "line 4:" in msg and "'minimum'" in msg and "min" in msg
    msg = error_of("""\
        expectations:
          - type: between
            column: a
            min: 0
            mostly: 2
    """)
    assert "line 5:" in msg and "'mostly'" in msg
    msg = error_of("""\
        expectations:
          - type: regex
            column: s
            pattern: "(?=x)y"
    """)
    assert "line 4:" in msg and "'pattern'" in msg and "RE2" in msg
    msg = error_of("""\
        expectations:
          - type: in_set
            column: s
    """)
    assert "line 2:" in msg and "values" in msg


def test_structural_errors():
    assert "line 2:" in error_of("suite: x\nsuit: y\nexpectations: []\n")
    assert "'expectations' must be a list" in error_of("expectations: 3\n")
    msg = error_of("expectations:\n  - type: between\n    column: a\n    column: b\n")
    assert "line 4" in msg and "twice" in msg
    assert "not valid YAML" in error_of("expectations: [\n")


def test_lambda_cannot_be_saved():
    with pytest.raises(InvalidInput, match="module:function"):
        V.Suite([V.custom(lambda df: df["a"] > 0)]).to_yaml()
