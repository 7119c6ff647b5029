"""Wiring a model server: load the models, open the Deployment row, start the prediction log and
the reload watcher, and run uvicorn (one process, or N workers sharing one Deployment row).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from mloop.errors import InvalidInput
from mloop.serving.app import MAX_BODY, ServingState, build_app
from mloop.serving.predlog import FLUSH_ROWS, FLUSH_SECONDS, QUEUE_ROWS, PredictionLogger
from mloop.serving.served import Served

log = logging.getLogger(__name__)

CONFIG_ENV = "MLOOP_SERVE_CONFIG"


@dataclass
class ServeOptions:
    """Everything `mloop serve` takes; passed to each worker as JSON."""

    uri: str
    challenger: str | None = None
    canary: float = 0.0
    shadow: str | None = None
    batching: bool = True
    max_batch: int = 1024  # rows: a scikit-learn call costs about the same for 1 or 1,000 rows
    max_latency_ms: float = 0.0
    batch_queue_rows: int = 10_000
    token: str | None = None
    max_body: int = MAX_BODY
    reload_interval: float = 5.0
    log_predictions: bool = True
    onnx: bool = False
    trust: bool = False
    flush_rows: int = FLUSH_ROWS
    flush_seconds: float = FLUSH_SECONDS
    queue_rows: int = QUEUE_ROWS
    deployment_id: str | None = None
    own_deployment: bool = True  # False in workers: the parent opens and closes the row
    host: str = "in-process"
    port: int = 0
    workers: int = 1
    extra: dict = field(default_factory=dict)


def is_bundle(uri: str) -> bool:
    return os.path.isfile(os.path.join(uri, "bundle.json"))


def is_floating(uri: str) -> bool:
    """Whether the URI can move to another version (an alias or latest), so reload must poll it."""
    from mloop.registry.uris import parse

    if is_bundle(uri) or uri.startswith("runs:/"):
        return False
    ref = parse(uri)
    return ref.alias is not None or ref.latest


def _load(uri: str, opts: ServeOptions, deployment: str, pinned: str | None = None) -> Served:
    if is_bundle(uri):
        from mloop.serving.bundle import load_bundle

        model, info = load_bundle(uri, trust=opts.trust)
        return _wrap(model, uri, opts, deployment, name=info["name"], version=info.get("version"))
    import mloop

    model = mloop.models.load(pinned or uri, trust=opts.trust)
    return _wrap(model, uri, opts, deployment)


def _wrap(model: Any, uri: str, opts: ServeOptions, deployment: str, **kw: Any) -> Served:
    onnx = None
    if opts.onnx:
        from mloop.serving.onnx import try_onnx

        onnx = try_onnx(model, uri)
    return Served(model, uri, deployment=deployment, onnx=onnx, **kw)


class Reloader:
    """Polls the registry for aliases that moved and swaps in the new version, loaded off the hot path."""

    def __init__(self, state: ServingState, roles: dict[str, str], opts: ServeOptions, deployment: str) -> None:
        self.state = state
        self.roles = {r: u for r, u in roles.items() if u and is_floating(u)}
        self.opts = opts
        self.deployment = deployment
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0

    def start(self) -> None:
        if self.roles and self.opts.reload_interval > 0:
            self._thread = threading.Thread(target=self._run, name="mloop-reload", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.opts.reload_interval):
            self.check()

    def check(self) -> None:
        import mloop

        for role, uri in self.roles.items():
            try:
                mv = mloop.models.get(uri)
                current = getattr(self.state, role)
                if current is not None and current.version == mv.version:
                    continue
                new = _load(uri, self.opts, self.deployment, pinned=f"models:/{mv.name}/{mv.version}")
                self.state.swap(role, new)
                self.swaps += 1
                log.info("%s %s now serves version %s", role, uri, mv.version)
            except Exception as exc:  # noqa: BLE001 - keep serving the old version
                log.warning("reload of %s (%s) failed, still serving the loaded version: %s", role, uri, exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


def create_app(uri: str | None = None, *, options: ServeOptions | None = None,
               input_resolver: Callable | None = None, **kw: Any) -> Any:
    """An ASGI app serving `uri` (a model URI or a bundle directory); keywords are `ServeOptions` fields.

    >>> app = create_app("churn@champion", batching=True)  # doctest: +SKIP
    >>> # uvicorn.run(app, port=8080)

    `input_resolver(columns, n) -> columns` turns what callers send (entity keys) into the model's
    inputs before the signature check; the feature store plugs in here.
    """
    if options is None:
        if uri is None:
            raise InvalidInput("create_app needs a model URI or a bundle directory")
        options = ServeOptions(uri=uri, **kw)
    opts = options
    bundle = is_bundle(opts.uri)
    store = None
    if not bundle:
        from mloop.store import get_store

        store = get_store()
    dep_id = opts.deployment_id
    if dep_id is None:
        dep_id = f"bundle:{_bundle_digest(opts.uri)}" if bundle else os.urandom(16).hex()
    champion = _load(opts.uri, opts, dep_id)
    challenger = _load(opts.challenger, opts, dep_id) if opts.challenger else None
    shadow = _load(opts.shadow, opts, dep_id) if opts.shadow else None
    if opts.canary and challenger is None:
        raise InvalidInput("--canary needs --challenger URI")
    if not 0.0 <= opts.canary <= 1.0:
        raise InvalidInput(f"--canary must be a share between 0 and 1, got {opts.canary}")

    deployments = None
    if store is not None:
        from mloop.store.serving import DeploymentRepo

        deployments = DeploymentRepo(store)
        if opts.own_deployment:
            deployments.start(model_uri=opts.uri, model=champion.name, version=champion.version, host=opts.host,
                              port=opts.port, workers=opts.workers, deployment_id=dep_id,
                              options=_public_options(opts))
    logger = PredictionLogger(_log_writer(store) if opts.log_predictions else None, flush_rows=opts.flush_rows,
                              flush_seconds=opts.flush_seconds, queue_rows=opts.queue_rows)
    feedback_sink = None
    if store is not None:
        from mloop.store.serving import FeedbackRepo

        repo = FeedbackRepo(store)

        def feedback_sink(pairs: list) -> int:
            return repo.add(pairs, deployment=dep_id)

    state = ServingState(champion, challenger=challenger, canary=opts.canary, shadow=shadow,
                         batching=opts.batching, max_batch=opts.max_batch, max_latency_ms=opts.max_latency_ms,
                         batch_queue_rows=opts.batch_queue_rows, token=opts.token, max_body=opts.max_body,
                         logger=logger, input_resolver=input_resolver, deployment=dep_id, feedback=feedback_sink)
    reloader = Reloader(state, {"champion": opts.uri, "challenger": opts.challenger or "",
                                "shadow": opts.shadow or ""}, opts, dep_id)

    def shutdown() -> None:
        reloader.stop()
        rows, dropped = state.close()
        if deployments is not None:
            deployments.add_counts(dep_id, rows, dropped)
            if opts.own_deployment:
                deployments.stop(dep_id)

    app = build_app(state, on_startup=[reloader.start], on_shutdown=[shutdown])
    app.state.deployment_id = dep_id
    app.state.reloader = reloader
    app.state.options = opts
    return app


def _public_options(opts: ServeOptions) -> dict:
    data = asdict(opts)
    data.pop("token", None)
    data["token"] = bool(opts.token)
    return data


def _bundle_digest(path: str) -> str:
    with open(os.path.join(path, "bundle.json")) as fh:
        return json.load(fh)["digest"].removeprefix("blake3:")


def _log_writer(store: Any) -> Callable:
    # imported now, not by the first flush: an import holds the GIL, stalling requests meanwhile
    import pyarrow.compute  # noqa: F401
    import pyarrow.pandas_compat  # noqa: F401 - what pa.array(..., from_pandas=True) imports on first use
    import pyarrow.parquet  # noqa: F401

    from mloop.artifacts import get_blob_store
    from mloop.store.serving import PredictionLogRepo, write_log_file

    blobs = get_blob_store()
    if store is None:
        return lambda table: write_log_file(blobs, table)
    repo = PredictionLogRepo(store, blobs)
    return repo.write


# -- running ------------------------------------------------------------------------------------
def check_bind(host: str, token: str | None, insecure: bool) -> None:
    """Refuse a non-loopback bind without a token unless `--insecure`."""
    if token or insecure:
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InvalidInput(f"binding {host} exposes the model to the network: set --token or MLOOP_SERVE_TOKEN, "
                           "or pass --insecure (MLOOP_SERVE_INSECURE=1) to serve without authentication")


def worker_app() -> Any:
    """The app factory each `--workers` process calls (options come from the environment)."""
    opts = ServeOptions(**json.loads(os.environ[CONFIG_ENV]))
    app = create_app(options=opts)
    _settle_heap()
    return app


def _settle_heap() -> None:
    """Move everything loaded so far (libraries, the model) out of the cyclic GC's sight: a
    long-lived server otherwise re-scans that heap on every full collection."""
    import gc

    gc.collect()
    gc.freeze()


def _uvicorn_kwargs() -> dict:
    # No access log, and so no use for uvicorn's X-Forwarded-For rewrite of the client address
    # (a middleware on every request): nothing in the server reads the client address.
    kw: dict[str, Any] = {"log_level": "warning", "access_log": False, "proxy_headers": False, "lifespan": "on",
                          "timeout_graceful_shutdown": 30}
    try:
        import httptools  # noqa: F401

        kw["http"] = "httptools"
    except ImportError:
        kw["http"] = "h11"
    try:
        import uvloop  # noqa: F401

        kw["loop"] = "uvloop"
    except ImportError:
        kw["loop"] = "asyncio"
    return kw


def _server_class() -> type:
    import signal
    from contextlib import contextmanager

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but a SIGTERM after a graceful drain exits 0 instead of re-raising."""

        @contextmanager
        def capture_signals(self):  # noqa: ANN202
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    return Server


def serve(opts: ServeOptions, *, announce: Callable[[str], None] = print) -> None:
    """Run the server until SIGTERM/SIGINT; `announce` gets `listening on http://HOST:PORT` first."""
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in opts.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((opts.host, opts.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    opts.port = port
    if opts.workers <= 1:
        app = create_app(options=opts)
        _settle_heap()
        config = uvicorn.Config(app, **_uvicorn_kwargs())
        server = _server_class()(config)
        announce(f"listening on http://{opts.host}:{port}")
        sys.stdout.flush()
        server.run(sockets=[sock])
        return
    _serve_workers(opts, sock, announce)


def _serve_workers(opts: ServeOptions, sock: socket.socket, announce: Callable[[str], None]) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from mloop.store import get_store
    from mloop.store.serving import DeploymentRepo

    bundle = is_bundle(opts.uri)
    metrics_dir = tempfile.mkdtemp(prefix="mloop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    repo = None
    if not bundle:
        probe = _load(opts.uri, opts, "")
        repo = DeploymentRepo(get_store())
        opts.deployment_id = os.urandom(16).hex()
        repo.start(model_uri=opts.uri, model=probe.name, version=probe.version, host=opts.host, port=opts.port,
                   workers=opts.workers, deployment_id=opts.deployment_id, options=_public_options(opts))
        del probe
    opts.own_deployment = False
    os.environ[CONFIG_ENV] = json.dumps(asdict(opts))
    config = uvicorn.Config("mloop.serving.server:worker_app", factory=True, workers=opts.workers,
                            **_uvicorn_kwargs())
    announce(f"listening on http://{opts.host}:{opts.port}")
    sys.stdout.flush()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        if repo is not None:
            repo.stop(opts.deployment_id)
        import shutil

        shutil.rmtree(metrics_dir, ignore_errors=True)


__all__ = ["ServeOptions", "create_app", "serve", "check_bind", "is_bundle"]
