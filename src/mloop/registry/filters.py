"""Model search filters: `name LIKE 'churn%' and tags.team = 'growth' and version_tags.stage = 'ok'`.

`and`-joined comparisons over attributes (`name`, `version`, `run_id`, `flavor`, `task`, `digest`,
`created`), `tags.<key>` (the registered model's) and `version_tags.<key>`; the operators of run search.
"""

from __future__ import annotations

from typing import Any

from mloop.errors import InvalidInput
from mloop.tracking.search import _operator, _tokens, _unquote

_NUMERIC = {"version", "created"}
_KINDS = {"tags": "tags", "tag": "tags", "version_tags": "version_tags", "version_tag": "version_tags",
          "attributes": "attributes", "attribute": "attributes"}


def parse(text: str | None) -> list[tuple[str, str, str, Any]]:
    """`(kind, key, op, value)` clauses of a model filter."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    out: list[tuple[str, str, str, Any]] = []
    i = 0
    while True:
        if i >= len(toks) or toks[i][0] != "ident":
            raise InvalidInput(f"bad filter: expected a key such as name or tags.team in {text!r}")
        ident = toks[i][1]
        if "." in ident:
            prefix, key = ident.split(".", 1)
            kind = _KINDS.get(prefix.lower())
            if kind is None:
                raise InvalidInput(f"bad filter: unknown prefix {prefix!r}; use tags., version_tags. or an attribute")
            key = key[1:-1] if key[:1] in "`\"" and key[-1:] == key[:1] else key
        else:
            kind, key = "attributes", ident
        i += 1
        op = _operator(toks, i, text)
        i += 2 if op == "NOT IN" else 1
        values = []
        if op in ("IN", "NOT IN"):
            if i >= len(toks) or toks[i][0] != "lp":
                raise InvalidInput(f"bad filter: expected '(' after {op} in {text!r}")
            i += 1
            while i < len(toks) and toks[i][0] != "rp":
                if toks[i][0] != "comma":
                    values.append(_value(kind, key, toks[i]))
                i += 1
            i += 1
            value: Any = tuple(values)
        else:
            if i >= len(toks):
                raise InvalidInput(f"bad filter: expected a value after {op} in {text!r}")
            value = _value(kind, key, toks[i])
            i += 1
        out.append((kind, key, op, value))
        if i >= len(toks):
            return out
        if toks[i][0] == "ident" and toks[i][1].lower() == "and":
            i += 1
            continue
        raise InvalidInput(f"bad filter: expected AND, got {toks[i][1]!r} in {text!r}")


def _value(kind: str, key: str, tok: tuple[str, str]) -> Any:
    tkind, raw = tok
    if kind == "attributes" and key in _NUMERIC:
        if tkind != "num":
            raise InvalidInput(f"bad filter: {key} compares with a number, got {raw!r}")
        return int(float(raw))
    if tkind == "str":
        return _unquote(raw)
    if tkind == "num":
        return raw
    raise InvalidInput(f"bad filter: expected a quoted value for {key}, got {raw!r}")
