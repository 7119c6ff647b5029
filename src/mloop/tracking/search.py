"""MLflow's run search syntax, parsed into clauses the store compiles to SQL.

    metrics.auc > 0.8 and params.C = '1.0' and tags.`team.name` LIKE 'gro%'

`and`-joined comparisons (`= != < <= > >=`, `LIKE`, `ILIKE`, `IN`, `NOT IN`) over `metrics.`,
`params.`, `tags.` and `attributes.`; backticks or quotes around dotted keys. Params and tags
compare as strings (by code point), metrics as numbers; a comparison never matches NaN, and a run
without the key never matches. LIKE is case-sensitive, ILIKE is not; in their patterns `%` and
`_` are wildcards and a backslash makes the next character literal.
"""

from __future__ import annotations

import re

from mloop.errors import InvalidInput
from mloop.store.tracking import ATTRIBUTE_KEYS, NUMERIC_ATTRIBUTES, Clause, OrderBy

_KINDS = {
    "metrics": "metrics", "metric": "metrics",
    "params": "params", "param": "params", "parameters": "params",
    "tags": "tags", "tag": "tags",
    "attributes": "attributes", "attribute": "attributes", "attr": "attributes", "run": "attributes",
}
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<ident>[A-Za-z_][A-Za-z0-9_]*\.(?:`[^`]+`|"[^"]+"|[A-Za-z0-9_.\-:/]+)|[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
      | (?P<lp>\()
      | (?P<rp>\))
      | (?P<comma>,)
    )""",
    re.X,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].strip().split()[0] if text[pos:].strip() else text[pos:]
            raise InvalidInput(f"bad filter: unexpected {bad!r} at position {pos} in {text!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _split_key(token: str) -> tuple[str, str]:
    if "." not in token:
        raise InvalidInput(
            f"bad filter: {token!r} needs a prefix: metrics.{token}, params.{token}, tags.{token} or attributes.{token}"
        )
    prefix, key = token.split(".", 1)
    kind = _KINDS.get(prefix.lower())
    if kind is None:
        raise InvalidInput(f"bad filter: unknown prefix {prefix!r} in {token!r}; use metrics., params., tags. or attributes.")
    if key[:1] in "`\"" and key[-1:] == key[:1]:
        key = key[1:-1]
    return kind, key


def _unquote(s: str) -> str:
    """The string literal's text: `\\'`, `\\"` and `\\\\` unescape; any other backslash stays (so
    `'ops\\_%'` reaches LIKE with its escaped underscore)."""
    return re.sub(r"\\([\\'\"])", r"\1", s[1:-1])


def parse_filter(text: str | None) -> list[Clause]:
    """Parse a filter string into clauses (raises InvalidInput naming the token at fault)."""
    if not text or not text.strip():
        return []
    toks = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def expect(kinds: tuple[str, ...], what: str) -> tuple[str, str]:
        nonlocal i
        if i >= len(toks):
            raise InvalidInput(f"bad filter: expected {what} at the end of {text!r}")
        tok = toks[i]
        if tok[0] not in kinds:
            raise InvalidInput(f"bad filter: expected {what}, got {tok[1]!r} in {text!r}")
        i += 1
        return tok

    while True:
        _, ident = expect(("ident",), "a key such as metrics.auc")
        kind, key = _split_key(ident)
        _check_attribute(kind, key)
        op = _operator(toks, i, text)
        i += 2 if op == "NOT IN" else 1
        if op in ("IN", "NOT IN"):
            expect(("lp",), "'(' after IN")
            values = []
            while True:
                tok = expect(("str", "num"), "a value in the IN list")
                values.append(_value(kind, key, tok, op))
                sep = expect(("comma", "rp"), "',' or ')'")
                if sep[0] == "rp":
                    break
            value: object = tuple(values)
        else:
            value = _value(kind, key, expect(("str", "num"), f"a value after {op}"), op)
        clauses.append(Clause(kind, key, op, value))
        if i >= len(toks):
            return clauses
        tok = toks[i]
        if tok[0] == "ident" and tok[1].lower() == "and":
            i += 1
            continue
        if tok[0] == "ident" and tok[1].lower() == "or":
            raise InvalidInput(f"bad filter: 'OR' is not supported (clauses are joined by AND) in {text!r}")
        raise InvalidInput(f"bad filter: expected AND, got {tok[1]!r} in {text!r}")


def _operator(toks: list[tuple[str, str]], i: int, text: str) -> str:
    if i >= len(toks):
        raise InvalidInput(f"bad filter: expected an operator at the end of {text!r}")
    kind, tok = toks[i]
    if kind == "op":
        return {"==": "=", "<>": "!="}.get(tok, tok)
    word = tok.upper() if kind == "ident" else ""
    if word in ("LIKE", "ILIKE", "IN"):
        return word
    if word == "NOT" and i + 1 < len(toks) and toks[i + 1][1].upper() == "IN":
        return "NOT IN"
    raise InvalidInput(f"bad filter: expected an operator (= != < <= > >= LIKE ILIKE IN), got {tok!r} in {text!r}")


def _value(kind: str, key: str, tok: tuple[str, str], op: str) -> object:
    tkind, raw = tok
    numeric = kind == "metrics" or (kind == "attributes" and key in NUMERIC_ATTRIBUTES)
    if numeric:
        if op in ("LIKE", "ILIKE"):
            raise InvalidInput(f"bad filter: {op} does not apply to {kind}.{key}, which is a number")
        if tkind != "num":
            raise InvalidInput(f"bad filter: {kind}.{key} compares with a number, got {raw!r}")
        return float(raw)
    if tkind != "str":
        raise InvalidInput(
            f"bad filter: {kind}.{key} compares as a string; quote the value: {kind}.{key} {op} '{raw}'"
        )
    return _unquote(raw)


def parse_order_by(items: list[str] | str | None) -> list[OrderBy]:
    """Parse `["metrics.auc DESC", "params.C"]` (ASC by default); runs without the key sort last."""
    if isinstance(items, str):
        items = [items]
    out = []
    for item in items or []:
        toks = _tokens(item) if isinstance(item, str) else []
        if not toks or toks[0][0] != "ident":
            raise InvalidInput(f"bad order_by {item!r}: expected a key such as 'metrics.auc DESC'")
        kind, key = _split_key(toks[0][1])
        _check_attribute(kind, key)
        descending = False
        if len(toks) > 1:
            word = toks[1][1].upper() if toks[1][0] == "ident" else ""
            if word not in ("ASC", "DESC"):
                raise InvalidInput(f"bad order_by {item!r}: expected ASC or DESC, got {toks[1][1]!r}")
            descending = word == "DESC"
        if len(toks) > 2:
            raise InvalidInput(f"bad order_by {item!r}: unexpected {toks[2][1]!r} after the direction")
        out.append(OrderBy(kind, key, descending))
    return out


def _check_attribute(kind: str, key: str) -> None:
    if kind == "attributes" and key not in ATTRIBUTE_KEYS:
        raise InvalidInput(f"bad filter: unknown attribute {key!r}; known: {', '.join(sorted(ATTRIBUTE_KEYS))}")
