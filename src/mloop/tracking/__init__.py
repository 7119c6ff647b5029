"""Experiment tracking: runs, params, metrics by step, tags, artifacts, environment, search."""

from mloop.tracking.fluent import (
    active_run,
    delete_experiment,
    delete_run,
    end_run,
    get_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    metric_history,
    restore_experiment,
    restore_run,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)
from mloop.tracking.query import RunList, search_runs
from mloop.tracking.run import Run

__all__ = [
    "Run", "RunList", "active_run", "delete_experiment", "delete_run", "end_run", "get_run", "log_artifact", "log_artifacts",
    "log_dict", "log_figure", "log_metric", "log_metrics", "log_param", "log_params", "log_text",
    "metric_history", "restore_experiment", "restore_run", "search_runs", "set_experiment", "set_tag", "set_tags", "start_run",
]
