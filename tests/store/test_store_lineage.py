"""Lineage edges (deduplicated, walked in either direction) and blob references."""

from __future__ import annotations

import pytest

from mloop.errors import InvalidInput
from mloop.store.lineage import BlobRefRepo, LineageRepo


def test_edges_are_deduplicated_and_walk_both_ways(store, monkeypatch):
    monkeypatch.setenv("MLOOP_USER", "bob")
    repo = LineageRepo(store)
    repo.add(("dataset_version", "churn/1"), "input", ("run", "r1"))
    repo.add(("dataset_version", "churn/1"), "input", ("run", "r1"))  # the same edge again: kept once
    store.transact(lambda conn: LineageRepo.add_in(conn, ("run", "r1"), "produced", ("model_version", "churn/3")))
    assert [(e.from_id, e.relation, e.to_id) for e in repo.edges(("run", "r1"))] == [
        ("churn/1", "input", "r1"), ("r1", "produced", "churn/3")]
    assert [e.to_id for e in repo.edges(("run", "r1"), "out")] == ["churn/3"]
    assert [e.from_id for e in repo.edges(("run", "r1"), "in")] == ["churn/1"]
    assert all(e.user == "bob" and isinstance(e.ts, int) for e in repo.edges(("run", "r1")))
    with pytest.raises(InvalidInput, match="sideways"):
        repo.edges(("run", "r1"), "sideways")


def test_blob_refs(store):
    digests = ["blake3:" + "a" * 64, "blake3:" + "b" * 64]
    store.transact(lambda conn: BlobRefRepo.add_in(conn, [*digests, digests[0]], "run", "r1"))
    store.transact(lambda conn: BlobRefRepo.add_in(conn, digests[:1], "model_version", "churn/1"))
    refs = BlobRefRepo(store)
    assert refs.live_digests() == set(digests)
    assert sorted(refs.owners(digests[0])) == [("model_version", "churn/1"), ("run", "r1")]
