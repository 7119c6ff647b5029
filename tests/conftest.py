"""Fixtures every room's tests reuse: an isolated MLOOP_HOME, the metadata store over SQLite and
PostgreSQL, the artifact store over a local folder and S3 (moto's server), Redis, and Ray.

PostgreSQL and Redis skip when absent, except under MLOOP_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from support import (  # noqa: F401 - re-exported for older imports
    PG_ADMIN_DSN,
    PG_PREFIX,
    REDIS_URL,
    free_port,
    invoke_cli,
    run_cli,
    wait_until,
)

# Ray turns on token auth by itself once ~/.ray/auth_token exists (any local ray.init writes one);
# the session cluster and its drivers would then refuse each other. Tests run Ray without auth.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def _require_services() -> bool:
    return os.environ.get("MLOOP_REQUIRE_SERVICES") == "1"


def _missing_service(what: str, why: object) -> None:
    if _require_services():
        pytest.fail(f"{what} is required (MLOOP_REQUIRE_SERVICES=1) but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


@pytest.fixture(autouse=True)
def mloop_home(tmp_path, monkeypatch):
    """Every test gets its own MLOOP_HOME (and cwd); other MLOOP_* variables are cleared."""
    for key in list(os.environ):
        if key.startswith("MLOOP_") and key != "MLOOP_REQUIRE_SERVICES" and not key.startswith("MLOOP_TEST_"):
            monkeypatch.delenv(key)
    home = tmp_path / ".mloop"
    home.mkdir()
    monkeypatch.setenv("MLOOP_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    import mloop.config

    mloop.config.reset()
    yield home
    _end_leftover_runs()
    mloop.config.reset()


def _end_leftover_runs() -> None:
    from mloop.tracking import fluent

    while (run := fluent.active_run()) is not None:
        try:
            run.end("KILLED")
        except Exception:
            fluent._stack.set(fluent._stack.get()[:-1])


# -- PostgreSQL -----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_database():
    """One database per xdist worker, dropped at the end; stale test databases (> 6 h) dropped first."""
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001
        _missing_service("PostgreSQL at 127.0.0.1:5432", exc)
    name = f"{PG_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        # missing_ok: another worker or session may drop its database while we look.
        stale = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s AND "
            "(pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification < now() - interval '6 hours'",
            (PG_PREFIX + "%",),
        ).fetchall()
        for (old,) in stale:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            except psycopg.Error:  # someone else is dropping it right now
                pass
        _create_database(admin, name)
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    import mloop.config

    mloop.config.reset()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _create_database(admin, name: str) -> None:  # noqa: ANN001
    """CREATE DATABASE, retried while template1 is briefly busy with another worker's create."""
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _truncate_pg(uri: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(uri)
    with engine.begin() as conn:
        names = conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )).scalars().all()
        if names:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def tracking_uri(request, monkeypatch, mloop_home):
    """The metadata store URI, once for SQLite and once for PostgreSQL (tables truncated after)."""
    if request.param == "sqlite":
        uri = f"sqlite:///{mloop_home / 'mloop.db'}"
    else:
        uri = request.getfixturevalue("pg_database")
    monkeypatch.setenv("MLOOP_TRACKING_URI", uri)
    import mloop.config

    mloop.config.reset()
    yield uri
    if request.param == "postgres":
        from mloop.tracking.writer import flush_all

        flush_all()
        mloop.config.reset()
        _truncate_pg(uri)


@pytest.fixture
def store(tracking_uri):
    """The opened metadata store (migrated) for the parametrised URI."""
    from mloop.store import get_store

    return get_store()


# -- S3 (moto server) -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server():
    """One moto S3 server per session on a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_server, monkeypatch):
    """A fresh bucket on the moto server; the environment points s3fs/boto at it."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MLOOP_S3_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    name = f"mloop-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def artifact_uri(request, monkeypatch, mloop_home):
    """The artifact store URI, once as a local folder and once as s3:// on moto."""
    if request.param == "local":
        uri = str(mloop_home / "artifacts")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        uri = f"s3://{bucket}/artifacts"
    monkeypatch.setenv("MLOOP_ARTIFACT_URI", uri)
    import mloop.config

    mloop.config.reset()
    return uri


# -- Redis ----------------------------------------------------------------------------------
@pytest.fixture
def redis_url():
    """Redis db 15 with a per-test key prefix in MLOOP_TEST_REDIS_PREFIX; only that prefix is cleaned."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        _missing_service("Redis at 127.0.0.1:6379", exc)
    prefix = f"mloop-test-{uuid.uuid4().hex[:10]}:"
    os.environ["MLOOP_TEST_REDIS_PREFIX"] = prefix
    yield REDIS_URL
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    os.environ.pop("MLOOP_TEST_REDIS_PREFIX", None)


# -- Ray ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster per session, started lazily; RAY_ADDRESS is exported so CLI
    subprocesses join it. Mark tests using it with `pytest.mark.xdist_group("ray")`."""
    ray_bin = Path(sys.executable).with_name("ray")
    port, client_port = free_port(), free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    started = subprocess.run(
        [str(ray_bin), "start", "--head", "--num-cpus=2", "--include-dashboard=false", f"--port={port}",
         f"--ray-client-server-port={client_port}",
         "--disable-usage-stats"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    if started.returncode != 0:
        pytest.fail(f"could not start Ray: {started.stderr[-2000:]}")
    address = f"127.0.0.1:{port}"
    old = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = address
    os.environ["MLOOP_TEST_RAY_CLIENT"] = f"ray://127.0.0.1:{client_port}"  # the cluster's Ray Client server
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    yield address
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass
    subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, timeout=120, env=env)
    if old is None:
        os.environ.pop("RAY_ADDRESS", None)
    else:
        os.environ["RAY_ADDRESS"] = old
