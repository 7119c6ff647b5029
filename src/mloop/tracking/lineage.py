"""Walking lineage edges from any entity URI (`mloop lineage URI`).

An entity URI names its kind: `runs:/<id>`, `models:/<name>/<N>` (or `@alias`), `datasets:/<name>@<N>`,
or `<kind>:<id>` for any stored kind (`deployment:…`, `pipeline_run:…`). Rooms that own a kind
register a resolver, so this module stays below them.
"""

from __future__ import annotations

from collections.abc import Callable

from mloop.errors import InvalidInput
from mloop.store.db import get_store
from mloop.store.lineage import Edge, LineageRepo


def _run_node(rest: str) -> tuple[str, str]:
    """`runs:/<id>[/<path>]` -> ("run", id); an unknown id is NotFound, not an empty walk."""
    from mloop.errors import NotFound
    from mloop.store.tracking import RunRepo

    run_id = rest.split("/", 1)[0]
    if not run_id or not RunRepo(get_store()).exists(run_id):
        raise NotFound(f"no run {run_id!r}; list runs with 'mloop runs list'")
    return "run", run_id


# prefix -> callable(rest) -> (kind, id). The rooms above tracking resolve their own URIs: each is
# named here by module and function, imported on first use (tracking never imports them statically).
RESOLVERS: dict[str, Callable[[str], tuple[str, str]]] = {
    "runs:/": _run_node,
}
_ROOM_RESOLVERS = {"models:/": ("mloop.registry", "resolve_entity"),
                   "datasets:/": ("mloop.data.versions", "resolve_entity")}
KINDS = ("run", "model_version", "dataset_version", "deployment", "alert", "pipeline_run")


def resolve(uri: str) -> tuple[str, str]:
    """The `(kind, id)` an entity URI names."""
    import importlib

    for prefix, (module, function) in _ROOM_RESOLVERS.items():
        if uri.startswith(prefix) and prefix not in RESOLVERS:
            try:
                RESOLVERS[prefix] = getattr(importlib.import_module(module), function)
            except ImportError:
                pass
    for prefix, fn in RESOLVERS.items():
        if uri.startswith(prefix):
            return fn(uri[len(prefix):])
    kind, sep, ident = uri.partition(":")
    if sep and kind in KINDS and ident:
        return kind, ident
    raise InvalidInput(
        f"cannot tell what {uri!r} names; use runs:/ID, models:/NAME/N, datasets:/NAME@N or KIND:ID "
        f"(kinds: {', '.join(KINDS)})"
    )


def walk(uri: str, *, direction: str = "both", depth: int = 10) -> list[Edge]:
    """Edges reachable from `uri`: `up` follows edges into it, `down` out of it, `both` either way."""
    if direction not in ("up", "down", "both"):
        raise InvalidInput(f"direction must be up, down or both, not {direction!r}")
    repo = LineageRepo(get_store())
    start = resolve(uri)
    seen_edges: dict[tuple, Edge] = {}
    frontier = [(start, d) for d in (("up", "down") if direction == "both" else (direction,))]
    visited = set()
    for _ in range(depth):
        nxt = []
        for node, way in frontier:
            if (node, way) in visited:
                continue
            visited.add((node, way))
            for edge in repo.edges(node, "in" if way == "up" else "out"):
                key = (edge.from_kind, edge.from_id, edge.relation, edge.to_kind, edge.to_id)
                seen_edges.setdefault(key, edge)
                nxt.append(((edge.from_kind, edge.from_id) if way == "up" else (edge.to_kind, edge.to_id), way))
        frontier = nxt
        if not frontier:
            break
    return sorted(seen_edges.values(), key=lambda e: e.ts)
