"""Model URIs (DESIGN.md, "Names and URIs"): `name/N`, `name@N`, `name@latest`, `name@alias`,
`name@sha:<8+ hex>`, with an optional `models:/` prefix; `runs:/<run_id>/<path>` names a model
logged with a run and not (necessarily) registered.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from mloop.errors import InvalidInput

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALIAS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_SHA = re.compile(r"^sha:([0-9a-f]{8,64})$")


class ModelRef(NamedTuple):
    """A parsed URI: exactly one of `version`, `alias`, `sha`, `latest` is set (or `run_id` + `path`)."""

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    sha: str | None = None
    latest: bool = False
    run_id: str | None = None
    path: str | None = None


def check_name(name: str) -> str:
    """`name` if it is a valid model name, else InvalidInput."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(f"bad model name {name!r}: use letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit, at most 128 characters")
    return name


def check_alias(alias: str) -> str:
    """`alias` if it is a word that is not `latest` and not all digits, else InvalidInput."""
    if not isinstance(alias, str) or alias == "latest" or alias.isdigit() or not ALIAS.match(alias) \
            or alias.startswith("sha:"):
        raise InvalidInput(f"bad alias {alias!r}: an alias is a word that is not 'latest' and not all digits "
                           "(e.g. champion, challenger)")
    return alias


def parse(uri: str) -> ModelRef:
    """Parse a model URI; a bare name means its latest version."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"bad model URI {uri!r}; use NAME/N, NAME@ALIAS or NAME@latest")
    text = uri.strip()
    if text.startswith("runs:/"):
        rest = text[len("runs:/"):].strip("/")
        run_id, _, path = rest.partition("/")
        if not run_id or not path:
            raise InvalidInput(f"bad run model URI {uri!r}; use runs:/<run_id>/<name>")
        return ModelRef(run_id=run_id, path=path)
    if text.startswith("models:/"):
        text = text[len("models:/"):]
    if "@" in text:
        name, _, ref = text.partition("@")
        check_name(name)
        if ref == "latest":
            return ModelRef(name=name, latest=True)
        if ref.isdigit():
            return ModelRef(name=name, version=int(ref))
        sha = _SHA.match(ref)
        if sha:
            return ModelRef(name=name, sha=sha.group(1))
        if ref.startswith("sha:"):
            raise InvalidInput(f"bad digest prefix in {uri!r}: use sha: and at least 8 hex digits")
        return ModelRef(name=name, alias=check_alias(ref))
    if "/" in text:
        name, _, ver = text.rpartition("/")
        check_name(name)
        if not ver.isdigit():
            raise InvalidInput(f"bad model URI {uri!r}: the part after '/' must be a version number")
        return ModelRef(name=name, version=int(ver))
    return ModelRef(name=check_name(text), latest=True)
