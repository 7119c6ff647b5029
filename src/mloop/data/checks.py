"""Checks run on a staged dataset version before it commits (`add(..., check=fn)` and providers).

Other rooms register a provider (validation does, on import, for attached suites): a callable
`fn(staged: DatasetVersion) -> None` that raises to refuse the version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mloop.errors import InvalidInput, MloopError, ValidationFailed

if TYPE_CHECKING:
    from mloop.data.versions import DatasetVersion

log = logging.getLogger(__name__)

_providers: list[Callable[[Any], None]] = []


def register_check_provider(fn: Callable[[DatasetVersion], None]) -> Callable[[DatasetVersion], None]:
    """Run `fn(staged)` before every dataset version commits; it raises to refuse. Returns `fn`."""
    if not callable(fn):
        raise InvalidInput(f"a check provider must be callable, got {type(fn).__name__}")
    if fn not in _providers:
        _providers.append(fn)
    return fn


def unregister_check_provider(fn: Callable[[DatasetVersion], None]) -> None:
    """Stop running a provider (tests)."""
    if fn in _providers:
        _providers.remove(fn)


def _load_providers() -> None:
    # Validation registers its provider on import; make sure it has been imported.
    import importlib

    try:
        importlib.import_module("mloop.validation")
    except ModuleNotFoundError as exc:
        if exc.name not in ("mloop.validation",):
            raise


def run_checks(staged: DatasetVersion, check: Callable[[DatasetVersion], None] | None, *,
               force: bool) -> list[str]:
    """Run `check` and every provider; a refusal raises unless `force` (then it is returned, logged)."""
    _load_providers()
    refusals: list[str] = []
    for fn in ([check] if check is not None else []) + list(_providers):
        try:
            fn(staged)
        except Exception as exc:  # any raised error refuses the version
            reason = f"{getattr(fn, '__name__', type(fn).__name__)}: {exc}"
            if not force:
                if isinstance(exc, MloopError):
                    raise
                raise ValidationFailed(
                    f"dataset {staged.name!r} was refused by check {reason}; nothing was committed "
                    "(fix the data, or add it anyway with force=True / --force)"
                ) from exc
            log.warning("dataset %r committed despite check %s (force)", staged.name, reason)
            refusals.append(reason)
    return refusals
