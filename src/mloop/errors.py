"""The exception hierarchy: one root, a few families, each raised for one kind of trouble.

Messages say what failed, with the value, and how to fix it. The CLI maps families to exit
codes (DESIGN.md) and the HTTP edge to status codes.
"""

from __future__ import annotations


class MloopError(Exception):
    """Root of every error mloop raises on purpose."""

    exit_code = 3
    http_status = 500
    code = "internal"


class NotFound(MloopError, LookupError):
    """Raised when a run, experiment, model, dataset, alias or blob does not exist."""

    exit_code = 2
    http_status = 404
    code = "not_found"


class InvalidInput(MloopError, ValueError):
    """Raised when an argument, a filter, a payload or a file breaks the rules it must follow."""

    exit_code = 2
    http_status = 422
    code = "invalid_input"


class Conflict(MloopError):
    """Raised when a write contradicts what is stored (a param logged twice with another value)."""

    exit_code = 2
    http_status = 409
    code = "conflict"


class CorruptBlob(MloopError):
    """Raised when a stored blob's content no longer matches its digest."""

    exit_code = 3
    http_status = 500
    code = "corrupt_blob"


class MissingDependency(MloopError, ImportError):
    """Raised when an optional library is needed; the message names the `pip install` to run."""

    exit_code = 2
    http_status = 500
    code = "missing_dependency"


class ServiceUnavailable(MloopError):
    """Raised when a database, object store, cluster or server cannot be reached."""

    exit_code = 3
    http_status = 503
    code = "service_unavailable"


class ValidationFailed(MloopError):
    """Raised when data breaks an error-severity expectation of a suite."""

    exit_code = 1
    http_status = 422
    code = "validation_failed"


class GateFailed(MloopError):
    """Raised when a candidate model does not meet a quality gate."""

    exit_code = 1
    http_status = 422
    code = "gate_failed"


class StepFailed(MloopError):
    """Raised when a pipeline step crashed after its retries; the message names the step."""

    exit_code = 3
    http_status = 500
    code = "step_failed"


def missing(package: str, extra: str | None = None, purpose: str = "") -> MissingDependency:
    """Build the error for an absent optional package, naming the exact install command."""
    how = f"pip install 'mloop[{extra}]'" if extra else f"pip install '{package}'"
    what = f" for {purpose}" if purpose else ""
    return MissingDependency(f"'{package}' is needed{what} but is not installed; run: {how}")


__all__ = [
    "MloopError",
    "NotFound",
    "InvalidInput",
    "Conflict",
    "CorruptBlob",
    "MissingDependency",
    "ServiceUnavailable",
    "ValidationFailed",
    "GateFailed",
    "StepFailed",
    "missing",
]
