"""The pipeline language: `@mloop.step` on plain functions, `@mloop.pipeline` on a function that
calls steps. Inside a pipeline body a step call returns a lazy output, so the body only wires a DAG;
outside one a step is a plain function.

    >>> @mloop.step
    ... def double(x: int) -> int:
    ...     return 2 * x
    >>> @mloop.pipeline(name="demo")
    ... def demo(x: int = 1):
    ...     return double(double(x))
    >>> demo.run(x=3).outputs["output"]  # doctest: +SKIP
    12

A step that reads files by path must take a dataset URI (`datasets:/name@N`, resolved to its digest
for the cache key) or set `cache=False`: the cache cannot see a file's content through its path.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import keyword
from collections.abc import Callable
from typing import Any

from mloop.errors import InvalidInput
from mloop.pipelines.dag import DAG, Node, OutputRef, refs_in

RESERVED = ("executor", "cache", "raise_on_failure")
_RESOURCE_KEYS = ("cpus", "memory", "gpus")

_trace: contextvars.ContextVar[DAG | None] = contextvars.ContextVar("mloop_pipeline_trace", default=None)


class DatasetRef(str):
    """A dataset URI as a pipeline parameter: `datasets:/name@latest`, `datasets:/name@3`.

    Annotate a pipeline parameter with it (or pass a value starting with `datasets:/`) to declare an
    input dataset: it is resolved to a version when the run starts, recorded as an `input` lineage
    edge, and re-resolved on every run (so `@latest` follows new versions).
    """

    def __new__(cls, uri: str) -> DatasetRef:
        if isinstance(uri, DatasetRef):
            return uri
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidInput(f"a dataset reference is a URI such as 'datasets:/churn@latest', got {uri!r}")
        text = uri if uri.startswith("datasets:/") else f"datasets:/{uri}"
        return super().__new__(cls, text)

    @property
    def spec(self) -> str:
        """The URI without its `datasets:/` prefix (`name@N`)."""
        return self[len("datasets:/"):]

    def __repr__(self) -> str:
        return f"DatasetRef({str(self)!r})"


def _lazy_error(ref: OutputRef, what: str) -> InvalidInput:
    return InvalidInput(
        f"{what} on the output of step {ref.node!r} inside a pipeline body: the body only wires steps "
        f"together, so the value does not exist yet. Move this logic into a @mloop.step function and pass "
        f"the output to it."
    )


class LazyOutput:
    """The future output of a step call inside a pipeline body; pass it to other steps."""

    __slots__ = ("_ref", "_dag")

    def __init__(self, ref: OutputRef, dag: DAG) -> None:
        self._ref = ref
        self._dag = dag

    @property
    def ref(self) -> OutputRef:
        return self._ref

    def __repr__(self) -> str:
        return f"<output {self._ref.output!r} of step {self._ref.node!r}>"

    def __bool__(self) -> bool:
        raise _lazy_error(self._ref, "bool() (an if/while/and/or)")

    def __iter__(self):  # noqa: ANN204
        raise _lazy_error(self._ref, "iteration (or unpacking; declare several outputs with @step(outputs=(...)))")

    def __len__(self) -> int:
        raise _lazy_error(self._ref, "len()")

    def __getitem__(self, key: Any) -> Any:
        raise _lazy_error(self._ref, f"indexing [{key!r}]")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _lazy_error(self._ref, f"attribute access .{name}")

    def __call__(self, *a: Any, **k: Any) -> Any:
        raise _lazy_error(self._ref, "calling it")

    def _op(self, *_: Any) -> Any:
        raise _lazy_error(self._ref, "arithmetic or comparison")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _op
    __floordiv__ = __mod__ = __pow__ = __neg__ = __abs__ = __lt__ = __le__ = __gt__ = __ge__ = _op
    __and__ = __or__ = __matmul__ = __invert__ = _op

    def __float__(self) -> float:
        raise _lazy_error(self._ref, "float()")

    def __int__(self) -> int:
        raise _lazy_error(self._ref, "int()")

    def __index__(self) -> int:
        raise _lazy_error(self._ref, "use as an index")

    def __array__(self, *a: Any, **k: Any) -> Any:
        raise _lazy_error(self._ref, "conversion to an array")

    def __fspath__(self) -> str:
        raise _lazy_error(self._ref, "use as a path")

    def __reduce__(self):  # noqa: ANN204
        raise _lazy_error(self._ref, "pickling")


def _check_identifier(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise InvalidInput(f"{kind} must be a Python identifier, got {value!r}")
    return value


class Step:
    """A function made a pipeline step; calling it in a pipeline body adds a node to the DAG."""

    def __init__(self, fn: Callable, *, name: str | None = None, outputs: tuple[str, ...] | None = None,
                 cache: bool = True, cache_version: str | int | None = None, retries: int = 0,
                 timeout: float | None = None, resources: dict[str, Any] | None = None,
                 _key_extra: Callable[[dict], Any] | None = None, _kind: str = "step") -> None:
        if not callable(fn):
            raise InvalidInput(f"@mloop.step decorates a function, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "step")
        self.qualname = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', self.name)}"
        if outputs is None:
            self.outputs: tuple[str, ...] = ("output",)
            self.multiple = False
        else:
            if isinstance(outputs, str):
                outputs = (outputs,)
            outputs = tuple(_check_identifier("an output name", o) for o in outputs)
            if not outputs or len(set(outputs)) != len(outputs):
                raise InvalidInput(f"step {self.name!r}: outputs must be distinct names, got {outputs!r}")
            self.outputs = outputs
            self.multiple = True
        if not isinstance(cache, bool):
            raise InvalidInput(f"step {self.name!r}: cache must be True or False, got {cache!r}")
        self.cache = cache
        if cache_version is not None and not isinstance(cache_version, str | int):
            raise InvalidInput(f"step {self.name!r}: cache_version must be a string or an int, got {cache_version!r}")
        self.cache_version = cache_version
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise InvalidInput(f"step {self.name!r}: retries must be a whole number >= 0, got {retries!r}")
        self.retries = retries
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise InvalidInput(f"step {self.name!r}: timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout) if timeout is not None else None
        self.resources = _check_resources(self.name, resources or {})
        self.signature = inspect.signature(fn)
        self._key_extra = _key_extra
        self.kind = _kind
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        dag = _trace.get()
        if dag is None:
            return self.fn(*args, **kwargs)
        return self._add_to(dag, args, kwargs)

    def _add_to(self, dag: DAG, args: tuple, kwargs: dict) -> Any:
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r} called with the wrong arguments: {exc}") from exc
        bound.apply_defaults()
        node_name = dag.new_name(self.name)
        arguments = {k: _unwrap(v, dag, self.name, k) for k, v in bound.arguments.items()}
        upstream = list(dict.fromkeys(r.node for v in arguments.values() for r in refs_in(v)))
        dag.add(Node(node_name, self, arguments, upstream))
        if not self.multiple:
            return LazyOutput(OutputRef(node_name, "output"), dag)
        return tuple(LazyOutput(OutputRef(node_name, o), dag) for o in self.outputs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self.__call__, obj)

    def __repr__(self) -> str:
        return f"<step {self.qualname}>"

    def __reduce__(self):  # noqa: ANN204
        return (_rebuild_step, (self.fn, self.name, self.outputs if self.multiple else None, self.cache,
                                self.cache_version, self.retries, self.timeout, self.resources, self._key_extra,
                                self.kind))


def _rebuild_step(fn, name, outputs, cache, cache_version, retries, timeout, resources, key_extra, kind):  # noqa: ANN001,ANN202
    return Step(fn, name=name, outputs=outputs, cache=cache, cache_version=cache_version, retries=retries,
                timeout=timeout, resources=resources, _key_extra=key_extra, _kind=kind)


def _check_resources(name: str, resources: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(resources, dict):
        raise InvalidInput(f"step {name!r}: resources is a dict such as {{'cpus': 2, 'memory': '4GB'}}, got {resources!r}")
    unknown = set(resources) - set(_RESOURCE_KEYS)
    if unknown:
        raise InvalidInput(f"step {name!r}: unknown resource(s) {sorted(unknown)}; known: {list(_RESOURCE_KEYS)}")
    out: dict[str, Any] = {}
    for key in ("cpus", "gpus"):
        if key in resources:
            value = resources[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"step {name!r}: resources[{key!r}] must be a number >= 0, got {value!r}")
            out[key] = value
    if "memory" in resources:
        out["memory"] = parse_memory(name, resources["memory"])
    return out


_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}


def parse_memory(name: str, value: Any) -> int:
    """Bytes from an int or a text such as '512MB' / '2 GiB'."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number):]
        try:
            amount = float(number)
        except ValueError:
            amount = -1
        if amount > 0 and unit in _UNITS:
            return int(amount * _UNITS[unit])
    raise InvalidInput(f"step {name!r}: resources['memory'] must be bytes or a size such as '2GB', got {value!r}")


def _unwrap(value: Any, dag: DAG, step: str, arg: str) -> Any:
    """Lazy outputs inside an argument become OutputRefs; outputs of another pipeline are refused."""
    if isinstance(value, LazyOutput):
        if value._dag is not dag:
            raise InvalidInput(f"step {step!r}, argument {arg!r}: that output belongs to another pipeline's body")
        return value.ref
    if isinstance(value, list):
        return [_unwrap(v, dag, step, arg) for v in value]
    if isinstance(value, tuple) and not isinstance(value, DatasetRef):
        items = [_unwrap(v, dag, step, arg) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: _unwrap(v, dag, step, arg) for k, v in value.items()}
    if isinstance(value, Step | Pipeline):
        raise InvalidInput(
            f"step {step!r}, argument {arg!r}: got the step {value.name!r} itself, not its output; call it "
            f"({value.name}(...)) and pass what it returns"
        )
    return value


def step(fn: Callable | None = None, /, *, name: str | None = None, outputs: tuple[str, ...] | None = None,
         cache: bool = True, cache_version: str | int | None = None, retries: int = 0, timeout: float | None = None,
         resources: dict[str, Any] | None = None) -> Any:
    """Make a function a pipeline step: `@mloop.step` or `@mloop.step(outputs=("X", "y"), retries=2)`.

    `cache` (default True) reuses stored outputs when the code, parameters and inputs are unchanged;
    bump `cache_version` to invalidate by hand. `retries` re-runs a failed attempt; `timeout` (seconds)
    needs a process executor; `resources` (`cpus`, `memory`, `gpus`) go to the executor.

    >>> @mloop.step(outputs=("X", "y"))
    ... def split(df):
    ...     return df.drop(columns="y"), df["y"]
    """
    options = dict(name=name, outputs=outputs, cache=cache, cache_version=cache_version, retries=retries,
                   timeout=timeout, resources=resources)
    if fn is not None:
        return Step(fn, **options)
    return lambda f: Step(f, **options)


class Pipeline:
    """A function whose body calls steps; `run(**params)` builds the DAG and executes it."""

    def __init__(self, fn: Callable, *, name: str | None = None, experiment: str | None = None) -> None:
        if not callable(fn):
            raise InvalidInput(f"@mloop.pipeline decorates a function, got {fn!r}")
        self.fn = fn
        self.name = name or fn.__name__
        _check_name(self.name)
        self.experiment = experiment or self.name
        self.signature = inspect.signature(fn)
        clash = [p for p in self.signature.parameters if p in RESERVED]
        if clash:
            raise InvalidInput(
                f"pipeline {self.name!r}: parameter name(s) {clash} are reserved for run() "
                f"({', '.join(RESERVED)}); rename them"
            )
        for p in self.signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
                raise InvalidInput(f"pipeline {self.name!r}: parameters are passed by name; {p.name!r} cannot be")
        self.source: str | None = None  # FILE:NAME when loaded from a file
        functools.update_wrapper(self, fn)
        self._check_definition()

    def _check_definition(self) -> None:
        """Wire the DAG once with the default parameters, so a misused output, a non-step value where
        an output is expected or a cycle is an error where the pipeline is defined. A body that needs
        parameters without defaults, or fails for another reason, is checked when it runs instead."""
        params = self.signature.parameters.values()
        if any(p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD for p in params):
            return
        try:
            self.trace(self.bind({}))
        except InvalidInput:
            raise
        except Exception:  # noqa: BLE001  (anything else is the body's business at run time)
            return

    def bind(self, params: dict[str, Any]) -> dict[str, Any]:
        """The full parameter dict (defaults applied); unknown or missing names are an InvalidInput."""
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            names = ", ".join(self.signature.parameters) or "none"
            raise InvalidInput(f"pipeline {self.name!r}: {exc} (parameters: {names})") from exc
        bound.apply_defaults()
        out = dict(bound.arguments)
        for key, value in list(out.items()):
            kind = self.signature.parameters[key].kind
            if kind == inspect.Parameter.VAR_KEYWORD:
                out.pop(key)
                out.update(value)
        return out

    def dataset_params(self, params: dict[str, Any]) -> list[str]:
        """Names of the declared input datasets: annotated DatasetRef, or a value starting `datasets:/`."""
        found = []
        for key, value in params.items():
            param = self.signature.parameters.get(key)
            annotation = param.annotation if param is not None else inspect.Parameter.empty
            annotated = annotation is DatasetRef or (isinstance(annotation, str) and annotation.split(".")[-1] == "DatasetRef")
            if (annotated and value is not None) or (isinstance(value, str) and value.startswith("datasets:/")):
                found.append(key)
        return found

    def trace(self, params: dict[str, Any]) -> tuple[DAG, dict[str, OutputRef]]:
        """Run the body with lazy outputs: the DAG and the pipeline's named outputs."""
        dag = DAG()
        token = _trace.set(dag)
        try:
            result = self.fn(**params)
        finally:
            _trace.reset(token)
        dag.order()  # cycles, dangling edges
        return dag, _named_outputs(self.name, result, dag)

    def dag(self, **params: Any) -> DAG:
        """The DAG the body builds for these parameters (nothing runs)."""
        return self.trace(self.bind(params))[0]

    def run(self, executor: Any = None, cache: bool = True, raise_on_failure: bool = True, **params: Any) -> Any:
        """Run the pipeline; returns a PipelineRun. A failed step records the run, then raises its error
        (`GateFailed` for a gate) unless `raise_on_failure=False`.

        `executor`: "local" (in process), "processes[:N]" (independent steps in parallel processes),
        "ray" (RAY_ADDRESS or a local cluster), "ray://host:10001", or an Executor.
        """
        from mloop.pipelines.runner import run_pipeline

        if _trace.get() is not None:
            raise InvalidInput(f"pipeline {self.name!r} is called inside another pipeline's body; call its steps "
                               "there instead (a pipeline is a unit of runs and records, not a step)")
        return run_pipeline(self, params, executor=executor, use_cache=cache, raise_on_failure=raise_on_failure)

    __call__ = run

    def __repr__(self) -> str:
        return f"<pipeline {self.name!r}>"


def _check_name(name: str) -> None:
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", name):
        raise InvalidInput(f"pipeline name must match [A-Za-z0-9][A-Za-z0-9._-]{{0,127}}, got {name!r}")


def _named_outputs(pipeline: str, result: Any, dag: DAG) -> dict[str, OutputRef]:
    def one(key: str, value: Any) -> OutputRef:
        if isinstance(value, LazyOutput) and value._dag is dag:
            return value.ref
        raise InvalidInput(
            f"pipeline {pipeline!r} returns {type(value).__name__} {_short(value)} as {key!r}, where a step "
            f"output is expected; return what a step call gave you (or a dict/tuple of those), or nothing"
        )

    if result is None:
        return {}
    if isinstance(result, LazyOutput):
        return {result.ref.output if result.ref.output != "output" else "output": one("output", result)}
    if isinstance(result, dict):
        return {str(k): one(str(k), v) for k, v in result.items()}
    if isinstance(result, tuple | list):
        refs = [one(str(i), v) for i, v in enumerate(result)]
        names = [r.output for r in refs]
        if len(set(names)) == len(names) and "output" not in names:
            return dict(zip(names, refs, strict=True))
        return {str(i): r for i, r in enumerate(refs)}
    return {"output": one("output", result)}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def pipeline(fn: Callable | None = None, /, *, name: str | None = None, experiment: str | None = None) -> Any:
    """Make a function a pipeline: `@mloop.pipeline(name="churn")`. The body calls steps; its
    parameters are the run's parameters (`executor`, `cache`, `raise_on_failure` are reserved).
    The run is tracked in `experiment` (default: the pipeline's name)."""
    if fn is not None:
        return Pipeline(fn, name=name, experiment=experiment)
    return lambda f: Pipeline(f, name=name, experiment=experiment)


def tracing() -> DAG | None:
    """The DAG being built, when called from inside a pipeline body."""
    return _trace.get()


__all__ = ["DatasetRef", "LazyOutput", "Pipeline", "Step", "pipeline", "step", "tracing", "RESERVED"]
