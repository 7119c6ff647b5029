"""Pipelines: `@mloop.step` / `@mloop.pipeline`, the DAG, the content-addressed step cache,
executors (local, processes, Ray), run records and lineage, quality gates and `mloop ci`.

    >>> @mloop.step
    ... def load(n: int = 100): ...
    >>> @mloop.step
    ... def train(df, C: float = 1.0): ...
    >>> @mloop.pipeline(name="churn")
    ... def churn(C: float = 1.0):
    ...     return train(load(), C=C)
    >>> run = churn.run(C=0.5, executor="local")  # doctest: +SKIP
    >>> print(run.tree())  # doctest: +SKIP
"""

from mloop.pipelines.dag import DAG, Node, OutputRef
from mloop.pipelines.executors import Executor, LocalExecutor, get_executor
from mloop.pipelines.gates import GateReport, gate
from mloop.pipelines.language import DatasetRef, LazyOutput, Pipeline, Step, pipeline, step
from mloop.pipelines.loader import load_pipeline
from mloop.pipelines.records import PipelineRun, StepRun, get_run, list_runs

__all__ = [
    "DAG", "DatasetRef", "Executor", "GateReport", "LazyOutput", "LocalExecutor", "Node", "OutputRef", "Pipeline",
    "PipelineRun", "Step", "StepRun", "gate", "get_executor", "get_run", "list_runs", "load_pipeline", "pipeline",
    "step",
]
