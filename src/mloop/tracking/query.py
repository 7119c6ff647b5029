"""Searching runs: `search_runs` compiles the filter to one SQL query, then loads the matches."""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInput
from mloop.store.db import get_store
from mloop.store.tracking import ExperimentRepo, RunRepo
from mloop.tracking.run import Run
from mloop.tracking.search import parse_filter, parse_order_by
from mloop.tracking.writer import get_writer


class RunList(list):
    """A list of `Run`s that also renders as a table (`to_pandas()`, `_repr_html_`)."""

    def to_pandas(self) -> Any:
        import pandas as pd

        rows = []
        for run in self:
            row = {"run_id": run.id, "name": run.name, "experiment": run.experiment, "status": run.status,
                   "start_time": pd.to_datetime(run.start_time, unit="ms", utc=True),
                   "end_time": pd.to_datetime(run.end_time, unit="ms", utc=True) if run.end_time else pd.NaT}
            row.update({f"params.{k}": v for k, v in run.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.metrics.items()})
            row.update({f"tags.{k}": v for k, v in run.tags.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        return self.to_pandas().to_html(index=False)


def search_runs(
    experiment: str | list[str] | None = None,
    filter: str | None = None,  # noqa: A002 - MLflow's name
    order_by: list[str] | None = None,
    limit: int | None = None,
    *,
    include_deleted: bool = False,
) -> RunList:
    """Runs matching an MLflow-style filter, ordered, fully loaded.

    >>> mloop.search_runs(experiment="churn", filter="metrics.auc > 0.8",
    ...                   order_by=["metrics.auc DESC"])  # doctest: +SKIP
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit must be a positive integer or None, got {limit!r}")
    clauses = parse_filter(filter)
    orders = parse_order_by(order_by)
    store = get_store()
    get_writer(store).flush()
    exp_ids = None
    if experiment is not None:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        repo = ExperimentRepo(store)
        exp_ids = [repo.get(n)["id"] for n in names]
    runs = RunRepo(store)
    ids = runs.search(exp_ids, clauses, orders, limit, include_deleted=include_deleted)
    return RunList(Run(r, store) for r in runs.load(ids))
