"""The pipeline DAG: nodes (one per step call in the pipeline body), edges from the outputs they read.

    >>> dag = DAG()  # doctest: +SKIP
    >>> dag.add(Node("load", step, args={}, upstream=[]))  # doctest: +SKIP
    >>> [n.name for n in dag.order()]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from mloop.pipelines.language import Step


@dataclass(frozen=True)
class OutputRef:
    """Where a value comes from: output `output` of node `node`."""

    node: str
    output: str


@dataclass
class Node:
    """One step call: the step, its bound arguments (values, or OutputRefs nested anywhere in
    lists, tuples and dicts), and the nodes it depends on."""

    name: str
    step: Step
    args: dict[str, Any]
    upstream: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.step.outputs


def refs_in(value: Any) -> list[OutputRef]:
    """Every OutputRef inside an argument value, in order."""
    found: list[OutputRef] = []

    def walk(v: Any) -> None:
        if isinstance(v, OutputRef):
            found.append(v)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return found


def substitute(value: Any, fn) -> Any:  # noqa: ANN001
    """`value` with each OutputRef replaced by `fn(ref)` (containers rebuilt, types kept)."""
    if isinstance(value, OutputRef):
        return fn(value)
    if isinstance(value, list):
        return [substitute(x, fn) for x in value]
    if isinstance(value, tuple):
        items = [substitute(x, fn) for x in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: substitute(x, fn) for k, x in value.items()}
    return value


class DAG:
    """Nodes in insertion order; `order()` is a topological order (insertion order when valid)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}

    def add(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise InvalidInput(f"the pipeline already has a step named {node.name!r}")
        self.nodes[node.name] = node
        return node

    def new_name(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`, ... when the step is called more than once."""
        if base not in self.nodes:
            return base
        n = 2
        while f"{base}-{n}" in self.nodes:
            n += 1
        return f"{base}-{n}"

    def downstream(self, name: str) -> list[str]:
        """Every node that depends on `name`, directly or not."""
        children: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for up in node.upstream:
                children.setdefault(up, []).append(node.name)
        seen: list[str] = []
        stack = list(children.get(name, []))
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.append(cur)
                stack.extend(children.get(cur, []))
        return [n for n in self.nodes if n in seen]

    def order(self) -> list[Node]:
        """Nodes in dependency order; a cycle or an edge to an unknown node is an InvalidInput."""
        for node in self.nodes.values():
            for up in node.upstream:
                if up not in self.nodes:
                    raise InvalidInput(f"step {node.name!r} depends on {up!r}, which is not a step of this pipeline")
        state: dict[str, int] = {}
        out: list[Node] = []

        def visit(name: str, path: list[str]) -> None:
            mark = state.get(name)
            if mark == 2:
                return
            if mark == 1:
                cycle = path[path.index(name):] + [name]
                raise InvalidInput(f"the pipeline has a cycle: {' -> '.join(cycle)}; a step cannot depend on itself")
            state[name] = 1
            for up in self.nodes[name].upstream:
                visit(up, [*path, name])
            state[name] = 2
            out.append(self.nodes[name])

        for name in self.nodes:
            visit(name, [])
        return out

    def to_dict(self) -> dict:
        return {n.name: {"step": n.step.qualname, "upstream": list(n.upstream), "outputs": list(n.outputs)}
                for n in self.order()}

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"DAG({', '.join(f'{n.name}<-{n.upstream}' for n in self.order())})"


__all__ = ["DAG", "Node", "OutputRef", "refs_in", "substitute"]
