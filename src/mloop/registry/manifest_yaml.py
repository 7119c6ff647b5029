"""The manifest `mloop-model.yaml` as YAML text without importing PyYAML (~12 ms of `log_model`).

`dump` spells a strict subset that YAML 1.1 (PyYAML's safe loaders, libyaml's included) reads back
equal: dicts with string keys, lists, None, bools, ints, floats (PyYAML's own spelling: `.nan`,
`.inf`, `1.0e-05`), and strings of printable ASCII (double-quoted unless a plain word). Anything else (another
type, a non-ASCII or control character, a key over 1,000 characters) makes it return None, and
the caller dumps with PyYAML instead.
"""

from __future__ import annotations

import re
from typing import Any

_MAX_KEY = 1000  # YAML limits implicit keys to 1,024 characters
# Left unquoted: a letter or underscore, then letters, digits, '_', '.', '-': YAML 1.1 reads such a
# word as a string unless it is one of these (compared in lower case).
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


class _Unsafe(Exception):
    """A value outside the subset this module spells."""


def dump(data: dict) -> str | None:
    """Block-style YAML for `data`, or None when PyYAML must write it."""
    lines: list[str] = []
    try:
        _mapping(data, 0, lines)
    except _Unsafe:
        return None
    return "\n".join(lines) + "\n"


def _mapping(data: dict, indent: int, out: list[str]) -> None:
    pad = " " * indent
    for key, value in data.items():
        if type(key) is not str or len(key) > _MAX_KEY:
            raise _Unsafe(key)
        if _nested(value):
            out.append(f"{pad}{_string(key)}:")
            if isinstance(value, dict):
                _mapping(value, indent + 2, out)
            else:
                _sequence(value, indent, out)  # PyYAML's style: items at the key's indent
        else:
            out.append(f"{pad}{_string(key)}: {_scalar(value)}")


def _sequence(items: list, indent: int, out: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if _nested(item):
            inner: list[str] = []
            if isinstance(item, dict):
                _mapping(item, indent + 2, inner)
            else:
                _sequence(item, indent + 2, inner)
            inner[0] = f"{pad}- {inner[0][indent + 2:]}"
            out.extend(inner)
        else:
            out.append(f"{pad}- {_scalar(item)}")


def _nested(value: Any) -> bool:
    return type(value) in (dict, list) and len(value) > 0


def _scalar(value: Any) -> str:
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _float(value)
    if kind is str:
        return _string(value)
    if kind is dict and not value:
        return "{}"
    if kind is list and not value:
        return "[]"
    raise _Unsafe(value)


def _float(value: float) -> str:
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:  # 1e-05 is a string to YAML 1.1; 1.0e-05 is a float
        text = text.replace("e", ".0e", 1)
    return text


def _string(value: str) -> str:
    if _PLAIN.fullmatch(value) and value.lower() not in _WORDS:
        return value
    if not all(" " <= c <= "~" for c in value):
        raise _Unsafe(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
