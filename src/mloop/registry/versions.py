"""The registry operations: resolve a URI, get versions, aliases (with audit history), tags,
descriptions, search, soft delete and restore, and registering a run's model.

`get` of `name@alias`, `name/N` or `name@latest`, in a process that has not opened the store yet,
first tries the store's SQLAlchemy-free one-row read (store/registry_lookup.py): a fresh process
that loads a model by alias does not import the database layer. Whatever that read cannot answer
goes through `ModelRepo` as before.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from mloop.errors import Conflict, InvalidInput, NotFound
from mloop.registry import uris
from mloop.registry.records import ModelVersion

if TYPE_CHECKING:
    from mloop.store.registry import ModelRepo


def _repo() -> ModelRepo:
    from mloop.store.db import get_store
    from mloop.store.registry import ModelRepo

    return ModelRepo(get_store())


def _model_or_raise(repo: ModelRepo, name: str) -> dict:
    model = repo.model(name)
    if model is None:
        names = [m["name"] for m in repo.models()]
        raise NotFound(f"no model {name!r} (models: {', '.join(names[:50]) or 'none'}); register one with "
                       "log_model(..., register=True)")
    if model["lifecycle_stage"] == "deleted":
        raise NotFound(f"model {name!r} is deleted; restore it with 'mloop models restore {name}'")
    return model


def resolve(uri: str) -> tuple[str, int]:
    """The `(name, version)` a model URI names (`name/N`, `name@alias`, `name@latest`, `name@sha:…`)."""
    ref = uris.parse(uri)
    if ref.run_id is not None:
        raise InvalidInput(f"{uri!r} names a run's model, not a registered version; register it with "
                           "mloop.models.register(uri, name)")
    repo = _repo()
    name = ref.name
    assert name is not None
    if ref.version is not None:
        row = repo.version(name, ref.version)
        if row is None or row["lifecycle_stage"] == "deleted":
            _model_or_raise(repo, name)
            live = [str(v["version"]) for v in repo.versions(name)]
            state = " (it is deleted; 'mloop models restore " + f"{name}/{ref.version}' brings it back)" if row else ""
            raise NotFound(f"model {name!r} has no version {ref.version}{state} (versions: {', '.join(live) or 'none'})")
        _model_or_raise(repo, name)
        return name, ref.version
    _model_or_raise(repo, name)
    if ref.alias is not None:
        aliases = repo.aliases(name)
        if ref.alias not in aliases:
            raise NotFound(f"model {name!r} has no alias {ref.alias!r} (aliases: {', '.join(aliases) or 'none'}); "
                           f"set one with 'mloop models alias {name} {ref.alias} VERSION'")
        return name, aliases[ref.alias]
    if ref.sha is not None:
        found = repo.by_digest_prefix(name, ref.sha)
        if not found:
            raise NotFound(f"model {name!r} has no version with digest sha:{ref.sha}")
        if len(found) > 1:
            raise InvalidInput(f"sha:{ref.sha} matches versions {found} of {name!r}; give more hex digits")
        return name, found[0]
    latest = repo.latest(name)
    if latest is None:
        raise NotFound(f"model {name!r} has no versions")
    return name, int(latest)


def get(uri: str) -> ModelVersion:
    """The `ModelVersion` a URI names.

    >>> mloop.models.get("churn@champion").version  # doctest: +SKIP
    3
    """
    row = _quick_row(uri)
    if row is None:
        name, version = resolve(uri)
        row = _repo().version(name, version)
        assert row is not None
    return ModelVersion.from_row(row)


def _quick_row(uri: str) -> dict | None:
    """The version row from the one-row read, or None (a run's model, a digest prefix, a miss, or
    a store this process already opened: its pooled connections answer as quickly)."""
    ref = uris.parse(uri)
    if ref.name is None or ref.sha is not None:
        return None
    from mloop.config import get_settings

    tracking_uri = get_settings().tracking_uri
    db = sys.modules.get("mloop.store.db")  # loaded means SQLAlchemy is; never import it here
    if db is not None and db.is_open(tracking_uri):
        return None
    from mloop.store.registry_lookup import find_version

    return find_version(tracking_uri, ref.name, version=ref.version, alias=ref.alias)


def set_alias(name: str, alias: str, version: int, reason: str | None = None) -> ModelVersion:
    """Point `name@alias` at `version`; the move, its history row and a `promoted` edge commit together.

    >>> mloop.models.set_alias("churn", "champion", version=3, reason="better AUC")  # doctest: +SKIP
    """
    uris.check_name(name)
    uris.check_alias(alias)
    repo = _repo()
    _model_or_raise(repo, name)
    if isinstance(version, str):
        version = resolve(f"{name}@{version}" if not version.isdigit() else f"{name}/{version}")[1]
    repo.move_alias(name, alias, int(version), reason)
    return get(f"{name}/{int(version)}")


def delete_alias(name: str, alias: str, reason: str | None = None) -> None:
    """Remove `name@alias` (recorded in the alias history)."""
    repo = _repo()
    _model_or_raise(repo, name)
    aliases = repo.aliases(name)
    if alias not in aliases:
        raise NotFound(f"model {name!r} has no alias {alias!r} (aliases: {', '.join(aliases) or 'none'})")
    repo.move_alias(name, alias, None, reason)


def alias_history(name: str, alias: str | None = None) -> list[dict]:
    """Every alias move of a model, oldest first: `alias, from_version, to_version, ts, user, reason`."""
    repo = _repo()
    _model_or_raise(repo, name)
    keys = ("alias", "from_version", "to_version", "ts", "user", "reason")
    return [{k: r[k] for k in keys} for r in repo.history(name, alias)]


def list_models(include_deleted: bool = False) -> list[dict]:
    """Registered models: `name, description, tags, latest_version, versions, aliases, created_ms, ...`."""
    return _repo().models(include_deleted=include_deleted)


def list_versions(name: str, include_deleted: bool = False) -> list[ModelVersion]:
    """Every version of a model, oldest first."""
    repo = _repo()
    _model_or_raise(repo, name)
    return [ModelVersion.from_row(r) for r in repo.versions(name, include_deleted=include_deleted)]


def search(filter: str | None = None, *, include_deleted: bool = False, limit: int | None = None) -> list[ModelVersion]:  # noqa: A002
    """Versions matching a filter over names, model tags and version tags; newest version first per name.

    >>> mloop.models.search("name LIKE 'churn%' and version_tags.validated = 'yes'")  # doctest: +SKIP
    """
    from mloop.registry.filters import parse

    rows = _repo().search(parse(filter), include_deleted=include_deleted, limit=limit)
    return [ModelVersion.from_row(r) for r in rows]


def _target(uri: str) -> tuple[str, int | None]:
    ref = uris.parse(uri)
    if ref.run_id is not None:
        raise InvalidInput(f"{uri!r} is a run's model; give a registered model name or version")
    if ref.latest and "@" not in uri:
        return ref.name or "", None  # a bare name: the registered model itself
    return resolve(uri)


def set_tags(uri: str, tags: dict[str, Any]) -> None:
    """Tags on a registered model (`churn`) or on one version (`churn/3`, `churn@champion`)."""
    name, version = _target(uri)
    repo = _repo()
    _model_or_raise(repo, name)
    clean = {str(k): str(v) for k, v in tags.items()}
    if version is None:
        repo.set_model_tags(name, clean)
    else:
        repo.set_version_tags(name, version, clean)


def set_description(uri: str, description: str) -> None:
    """The description of a registered model or of one version."""
    name, version = _target(uri)
    repo = _repo()
    _model_or_raise(repo, name)
    if version is None:
        repo.set_model_fields(name, description=description)
    else:
        repo.set_version_fields(name, version, description=description)


def delete(uri: str) -> None:
    """Soft-delete a version (`churn/3`) or a whole model (`churn`); `restore` brings it back."""
    ref = uris.parse(uri)
    repo = _repo()
    if ref.version is not None and ref.name:
        _model_or_raise(repo, ref.name)
        if repo.version(ref.name, ref.version) is None:
            resolve(uri)  # raises the NotFound listing versions
        repo.set_version_stage(ref.name, ref.version, "deleted")
        return
    name, version = _target(uri)
    if version is not None:
        repo.set_version_stage(name, version, "deleted")
        return
    _model_or_raise(repo, name)
    repo.set_model_stage(name, "deleted")


def restore(uri: str) -> None:
    """Undo `delete` of a version or a model."""
    ref = uris.parse(uri)
    if ref.name is None:
        raise InvalidInput(f"cannot restore {uri!r}; give NAME or NAME/N")
    repo = _repo()
    model = repo.model(ref.name)
    if model is None:
        _model_or_raise(repo, ref.name)
    if ref.version is not None:
        row = repo.version(ref.name, ref.version)
        if row is None:
            raise NotFound(f"model {ref.name!r} has no version {ref.version}")
        repo.set_version_stage(ref.name, ref.version, "active")
        return
    if "@" in uri:
        raise InvalidInput(f"restore takes NAME or NAME/N, not {uri!r}")
    repo.set_model_stage(ref.name, "active")


def register(uri: str, name: str, *, tags: dict | None = None, description: str | None = None) -> ModelVersion:
    """Register a model logged with a run (`runs:/<id>/<path>`) as the next version of `name`."""
    from mloop.registry.save import register_logged

    ref = uris.parse(uri)
    if ref.run_id is None:
        raise InvalidInput(f"register takes a run's model URI (runs:/<id>/<path>), got {uri!r}")
    return register_logged(ref.run_id, ref.path or "", uris.check_name(name), tags=tags, description=description)


def ensure_not_deleted(name: str) -> None:
    model = _repo().model(name)
    if model is not None and model["lifecycle_stage"] == "deleted":
        raise Conflict(f"model {name!r} is deleted; restore it with 'mloop models restore {name}'")
