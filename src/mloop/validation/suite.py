"""Suites: an ordered list of expectations with unique names, validated in one pass, kept as YAML.

    >>> from mloop.validation import Suite, expectations as E
    >>> suite = Suite([E.not_null("id"), E.Between(column="age", min=0, max=120)], name="people")
    >>> print(suite.to_yaml())  # doctest: +NORMALIZE_WHITESPACE
    suite: people
    expectations:
    - type: max_nulls
      column: id
    - type: between
      column: age
      min: 0
      max: 120
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput
from mloop.validation import expectations as E
from mloop.validation.results import ValidationResult

SCHEMA_VERSION = 1


class Suite:
    """Expectations checked together; `validate(data)` accepts pandas, polars, pyarrow or a
    parquet/csv path (scanned by DuckDB, streaming)."""

    def __init__(self, expectations: Iterable[E.Expectation] = (), *, name: str | None = None,
                 description: str | None = None, meta: dict[str, Any] | None = None) -> None:
        self.expectations: list[E.Expectation] = []
        self.name = name
        self.description = description
        self.meta = dict(meta or {})
        self.version: int | None = None  # set when loaded from the store
        for exp in expectations:
            self.add(exp)

    def add(self, exp: E.Expectation) -> Suite:
        """Append an expectation; a repeated name gets a `#2`, `#3`... suffix."""
        if not isinstance(exp, E.Expectation):
            raise InvalidInput(f"a suite holds expectations, got {type(exp).__name__}")
        taken = {e.key for e in self.expectations}
        if exp.key in taken:
            n = 2
            while f"{exp.key}#{n}" in taken:
                n += 1
            exp.name = f"{exp.key}#{n}"
        self.expectations.append(exp)
        return self

    def __len__(self) -> int:
        return len(self.expectations)

    def __iter__(self):  # noqa: ANN204
        return iter(self.expectations)

    def __getitem__(self, key: str | int) -> E.Expectation:
        if isinstance(key, int):
            return self.expectations[key]
        for exp in self.expectations:
            if exp.key == key:
                return exp
        raise KeyError(key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Suite) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Suite(name={self.name!r}, expectations={len(self)})"

    def validate(self, data: Any) -> ValidationResult:
        """Check `data` against every expectation; see ValidationResult for what comes back."""
        from mloop.validation.checks import run
        from mloop.validation.engine import open_source

        source = open_source(data)
        return run(self.expectations, source, suite=self.name if self.version is None
                   else f"{self.name}@{self.version}")

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["suite"] = self.name
        if self.description:
            out["description"] = self.description
        if self.meta:
            out["meta"] = self.meta
        out["expectations"] = [e.to_dict() for e in self.expectations]
        return out

    def to_yaml(self) -> str:
        """YAML a person can edit; `Suite.from_yaml` reads it back to an equal suite."""
        import yaml

        for exp in self.expectations:
            if isinstance(exp, E.Custom) and exp.params()["fn"] == "<callable>":
                raise InvalidInput(f"expectation {exp.key!r} holds a lambda or local function; give fn as "
                                   "'module:function' to save it as YAML")
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None,
                              width=100)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suite:
        return _from_mapping(data, lambda key, node=None: "")

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<yaml>") -> Suite:
        """Parse YAML; a bad expectation type or parameter is an InvalidInput naming line and key."""
        import yaml

        from mloop.validation.yaml_lines import load_with_lines

        try:
            data = load_with_lines(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark else ""
            raise InvalidInput(f"{source}: {where}not valid YAML: {getattr(exc, 'problem', exc)}") from None

        def where(key: str, node: Any = None) -> str:
            node = data if node is None else node
            line = getattr(node, "lines", {}).get(key) or getattr(node, "line", None)
            return f"{source}: line {line}: " if line else f"{source}: "

        return _from_mapping(data, where)

    @classmethod
    def load(cls, path: str | Path) -> Suite:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read suite file {str(path)!r}: {exc.strerror}") from None
        return cls.from_yaml(text, source=str(path))


def _from_mapping(data: Any, where: Any) -> Suite:
    if not isinstance(data, dict):
        raise InvalidInput(f"{where('expectations')}a suite is a mapping with an 'expectations' list")
    known = {"suite", "name", "description", "meta", "expectations", "schema_version"}
    for key in data:
        if key not in known:
            raise InvalidInput(f"{where(key)}unknown key {key!r} (keys: {', '.join(sorted(known))})")
    items = data.get("expectations")
    if not isinstance(items, list):
        raise InvalidInput(f"{where('expectations')}'expectations' must be a list")
    from mloop.validation.yaml_lines import plain

    suite = Suite(name=data.get("suite") or data.get("name"), description=data.get("description"),
                  meta=plain(data.get("meta")))
    for item in items:
        try:
            exp = E.from_dict(plain(item))
        except E.ParamError as exc:
            key = exc.key if isinstance(item, dict) and exc.key in item else "type"
            raise InvalidInput(f"{where(key, item)}expectation {item.get('type', '?')!r}: key {key!r}: {exc}"
                               if isinstance(item, dict) else f"{where('expectations')}{exc}") from None
        suite.add(exp)
    return suite
