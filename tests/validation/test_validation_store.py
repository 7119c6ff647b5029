"""Suites stored and versioned in the metadata store (SQLite and PostgreSQL), attached to dataset
names; an attached suite refuses a bad `mloop.data.add` unless forced."""

from __future__ import annotations

import pytest

import mloop
import mloop.validation as V
from mloop.demo.data import generate_churn
from mloop.errors import InvalidInput, NotFound, ValidationFailed


@pytest.fixture(scope="module")
def reference():
    return generate_churn(1_500, seed=21)


def test_save_get_and_versions(tracking_uri, reference):
    suite = V.infer_suite(reference)
    first = V.save_suite(suite, "churn", description="from the March export")
    assert (first.name, first.version) == ("churn", 1)
    edited = V.Suite.from_yaml(suite.to_yaml())
    edited.add(V.RowCount(min=1))
    second = V.save_suite(edited, "churn")
    assert second.version == 2
    assert V.get_suite("churn") == second and V.get_suite("churn").version == 2
    assert V.get_suite("churn@1") == first and V.get_suite("churn/1").version == 1
    assert V.get_suite("churn@latest").version == 2
    listed = V.list_suites()
    assert [(r["name"], r["version"], r["expectations"]) for r in listed] == [("churn", 2, len(edited))]
    result = V.get_suite("churn@1").validate(reference)
    assert result.ok and result.suite == "churn@1"
    with pytest.raises(NotFound, match="versions: 1, 2"):
        V.get_suite("churn@9")
    with pytest.raises(NotFound, match="no suite named 'nope'"):
        V.get_suite("nope")
    with pytest.raises(InvalidInput):
        V.save_suite(suite, "bad name!")


def test_attach_refuses_a_bad_add_unless_forced(tracking_uri, reference):
    V.save_suite(V.infer_suite(reference), "churn")
    V.attach("churn", "churn-train")
    assert V.attached_suite("churn-train").name == "churn"
    assert V.attached_suite("other") is None
    assert V.list_suites()[0]["datasets"] == ["churn-train"]

    good = mloop.data.add(reference, name="churn-train")
    assert good.version == 1
    bad = reference.copy()
    bad.loc[[2, 9], "contract"] = "lifetime"
    with pytest.raises(ValidationFailed, match="no_unseen_categories:contract") as info:
        mloop.data.add(bad, name="churn-train")
    assert "--force" in str(info.value)
    assert mloop.data.get("churn-train@latest").version == 1  # nothing committed
    forced = mloop.data.add(bad, name="churn-train", force=True)
    assert forced.version == 2

    assert V.detach("churn-train")
    assert mloop.data.add(bad.iloc[:100], name="churn-train").version == 3  # no suite: no check


def test_attach_needs_an_existing_suite(tracking_uri):
    with pytest.raises(NotFound):
        V.attach("missing", "churn-train")


def test_pinned_attachment_keeps_its_version(tracking_uri, reference):
    V.save_suite(V.Suite([V.RowCount(min=1)]), "s")
    V.attach("s@1", "d")
    V.save_suite(V.Suite([V.RowCount(min=10**9)]), "s")
    assert V.attached_suite("d").version == 1
    mloop.data.add(reference, name="d")  # version 1 of the suite passes
