"""The model server's ASGI app (Starlette): the V2 inference protocol, `/predict` and MLflow's
`/invocations`, `/feedback`, `/metrics`, health, and OpenAPI docs.

The hot path is plain functions over bytes: orjson in and out, the column order computed once, one
model call for both outputs, the log append O(1). Errors follow DESIGN.md "Errors over HTTP":
`/v2/*` answers `{"error": msg}`, other routes `{"error": code, "message": msg}`; an unexpected
exception is a 500 with an id in the log and no traceback in the body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import itertools
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mloop.errors import InvalidInput, MloopError, NotFound
from mloop.serving import payloads
from mloop.serving.batching import MicroBatcher
from mloop.serving.metrics import ServerMetrics
from mloop.serving.payloads import BadRequest, PayloadTooLarge
from mloop.serving.predlog import PredictionLogger, request_ids
from mloop.serving.served import Served
from mloop.serving.traffic import to_challenger

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024
JSON = "application/json"

# Request ids: a random per-process prefix and a counter — unique across workers and restarts like a
# uuid4's 32 hex digits, without a getrandom call per request. Reset in a forked worker.
_RID_PREFIX = os.urandom(8).hex()
_rid_counter = itertools.count()


def new_request_id() -> str:
    return f"{_RID_PREFIX}{next(_rid_counter):016x}"


def _reset_request_ids() -> None:
    global _RID_PREFIX, _rid_counter
    _RID_PREFIX = os.urandom(8).hex()
    _rid_counter = itertools.count()


os.register_at_fork(after_in_child=_reset_request_ids)


class Unauthorized(MloopError):
    """Raised when a request lacks the bearer token the server requires."""

    http_status = 401
    code = "unauthorized"


class ServingState:
    """Everything the routes share. `champion`, `challenger` and `shadow` are swapped whole on reload."""

    def __init__(self, champion: Served, *, challenger: Served | None = None, canary: float = 0.0,
                 shadow: Served | None = None, batching: bool = True, max_batch: int = 1024,
                 max_latency_ms: float = 0.0, batch_queue_rows: int = 10_000, token: str | None = None,
                 max_body: int = MAX_BODY, logger: PredictionLogger | None = None,
                 input_resolver: Callable | None = None, deployment: str = "",
                 feedback: Callable[[list[tuple[str, Any]]], int] | None = None) -> None:
        self.champion = champion
        self.challenger = challenger
        self.canary = canary
        self.shadow = shadow
        self.token = token.encode() if token else None
        self.max_body = max_body
        self.logger = logger or PredictionLogger(None)
        self.input_resolver = input_resolver
        self.deployment = deployment
        self.feedback_sink = feedback
        self.metrics = ServerMetrics()
        self.logger.on_drop = lambda n: self.metrics.log_dropped.inc(n)
        self.logger.on_write = lambda n: self.metrics.log_rows.inc(n)
        self.batcher: MicroBatcher | None = None
        if batching:
            self.batcher = MicroBatcher(self._run_batch, max_batch=max_batch, max_latency_ms=max_latency_ms,
                                        queue_rows=batch_queue_rows, run_one=self._run_one)
            self.batcher.on_batch = self.metrics.batch.observe
        self._side = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mloop-shadow")
        self._shadow_inflight = 0
        self.ready = True
        self.answered = 0
        self._rng = random.Random()
        for role, s in (("champion", champion), ("challenger", challenger), ("shadow", shadow)):
            if s is not None:
                self.metrics.served(s.name, s.version_text, role)

    # -- which model answers --------------------------------------------------------------------
    def pick(self, key: str | None) -> Served:
        """The model that answers a request carrying routing key `key` (None: random split)."""
        ch = self.challenger
        if ch is not None and to_challenger(key, self.canary, self._rng):
            return ch
        return self.champion

    def by_version(self, name: str, version: str | None) -> Served:
        for s in (self.champion, self.challenger):
            if s is not None and s.name == name and (version is None or s.version_text == version):
                return s
        names = sorted({s.name for s in (self.champion, self.challenger) if s is not None})
        if all(s.name != name for s in (self.champion, self.challenger) if s is not None):
            raise NotFound(f"unknown model {name!r}; this server serves {', '.join(names)}")
        served = sorted({s.version_text for s in (self.champion, self.challenger)
                         if s is not None and s.name == name})
        raise NotFound(f"model {name!r} has no version {version!r} here; served versions: {', '.join(served)}")

    def swap(self, role: str, new: Served) -> None:
        old = getattr(self, role)
        setattr(self, role, new)
        if old is not None:
            self.metrics.served(old.name, old.version_text, role, on=False)
        self.metrics.served(new.name, new.version_text, role)

    # -- predicting ---------------------------------------------------------------------------
    def _run_batch(self, items: list) -> list:
        """One model call for a batch (on the worker thread), logged and counted as one block."""
        served = items[0][0]
        if all(i[0] is served for i in items):
            cols, total, pred, proba = served.predict_block([(i[1], i[2]) for i in items])
            self._answered_block(served, items, cols, total, pred, proba)
            return Served.split([i[2] for i in items], pred, proba)
        results = [i[0].predict(i[1], i[2]) for i in items]  # a canary batch: one call per request
        for item, (pred, proba) in zip(items, results, strict=True):
            self._answered_block(item[0], [item], item[1], item[2], pred, proba)
        return results

    def _run_one(self, item: tuple) -> Any:
        pred, proba = item[0].predict(item[1], item[2])
        self._answered_block(item[0], [item], item[1], item[2], pred, proba)
        return pred, proba

    def _answered_block(self, served: Served, items: list, cols: dict, total: int, pred: np.ndarray,
                        proba: np.ndarray | None) -> None:
        """Log and count the requests `items` ((served, cols, n, request id, t0, route) each) that
        one model call answered: one log entry holding the call's columns and outputs as they are
        (a lone request's entry is the plain one-request kind; a batch's has an id and a latency per
        row), each request's count and latency, the call's rows and prediction distribution.
        Latency runs to the moment the answer is ready."""
        now = time.perf_counter()
        version = served.version_text or ""
        ts_ms = time.time_ns() // 1_000_000
        for _, _, _, _, t0, route in items:
            self.metrics.request(route, version, now - t0)
        if len(items) == 1:  # a lone request (a quiet server's batch): the log's one-request entry
            _, _, n, rid, t0, _ = items[0]
            self.logger.log(served.target, rid, ts_ms, (now - t0) * 1000.0, cols, n, pred, proba)
        else:
            rids: list[str] = []
            latencies: list[float] = []
            for _, _, n, rid, t0, _ in items:
                rids.extend(request_ids(rid, n))
                latencies.extend([(now - t0) * 1000.0] * n)
            self.logger.log_block(served.target, rids, ts_ms, latencies, cols, total, pred, proba)
        self.metrics.predicted(version, total, pred, served.classes is not None)

    def infer(self, served: Served, cols: dict, n: int, rid: str, t0: float, route: str) -> asyncio.Future:
        """The future of the model's answer for one request, for the route to await (a future, not
        a coroutine: one frame less per request); with batching, its batch logs and counts it."""
        if self.batcher is not None:
            return self.batcher.enqueue((served, cols, n, rid, t0, route), n)
        self.metrics.batch.observe(n)
        answer = asyncio.get_running_loop().create_future()
        answer.set_result(served.predict(cols, n))
        return answer

    def after(self, served: Served, rid: str, t0: float, cols: dict, n: int, pred: np.ndarray,
              proba: np.ndarray | None, route: str) -> None:
        """Everything that happens once a request's answer is sent: log and count it (unless its
        batch did), copy it to the shadow."""
        if self.batcher is None:
            latency = time.perf_counter() - t0
            version = served.version_text or ""
            self.logger.log(served.target, rid, time.time_ns() // 1_000_000, latency * 1000.0, cols, n, pred, proba)
            self.metrics.request(route, version, latency)
            self.metrics.predicted(version, n, pred, served.classes is not None)
        self.answered += 1
        if self.shadow is not None:
            self._send_shadow(rid, cols, n)

    def _send_shadow(self, rid: str, cols: dict, n: int) -> None:
        if self._shadow_inflight > 1000:  # a slow shadow must not pile up memory
            return
        self._shadow_inflight += 1
        self._side.submit(self._shadow_job, self.shadow, rid, cols, n)

    def _shadow_job(self, shadow: Served, rid: str, cols: dict, n: int) -> None:
        t0 = time.perf_counter()
        try:
            pred, proba = shadow.predict(cols, n)
            self.logger.log(shadow.target, f"{rid}:shadow", time.time_ns() // 1_000_000,
                            (time.perf_counter() - t0) * 1000.0, cols, n, pred, proba)
        except Exception as exc:  # noqa: BLE001 - the shadow never affects callers
            log.warning("shadow %s failed on request %s: %s", shadow.uri, rid, exc)
        finally:
            self._shadow_inflight -= 1

    def close(self) -> tuple[int, int]:
        self._side.shutdown(wait=True)
        if self.batcher is not None:
            self.batcher.close()
        return self.logger.close()


# -- request plumbing ---------------------------------------------------------------------------
def _request_id(request: Request) -> str:
    rid = request.headers.get("x-request-id")
    if rid:
        return rid[:200]
    return new_request_id()


def _check_token(state: ServingState, request: Request) -> None:
    if state.token is None:
        return
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer ") or not hmac.compare_digest(header[7:].strip().encode(), state.token):
        raise Unauthorized("this server requires 'Authorization: Bearer <token>' (MLOOP_SERVE_TOKEN)")


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    try:
        return await _receive_body(request.receive, None if length is None else length.encode(), limit)
    except _ClientGone:
        raise BadRequest("the client went away before sending the whole body") from None


def _error(exc: BaseException, v2: bool, rid: str | None = None) -> Response:
    if isinstance(exc, MloopError) and exc.http_status < 500 or isinstance(exc, MloopError) and \
            exc.http_status == 503:
        status, code, msg = exc.http_status, exc.code, str(exc)
    else:
        error_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on request %s", error_id, rid, exc_info=exc)
        status, code, msg = 500, "internal", f"internal error {error_id}; the server log has the details"
    headers = {"x-request-id": rid} if rid else None
    return Response(payloads.error_body(msg, None if v2 else code), status_code=status, media_type=JSON,
                    headers=headers)


def _fail(state: ServingState, route: str, exc: BaseException, v2: bool, rid: str) -> Response:
    resp = _error(exc, v2, rid)
    state.metrics.child(state.metrics.errors, route, str(resp.status_code)).inc()
    return resp


# -- routes -------------------------------------------------------------------------------------
async def live(request: Request) -> Response:
    return Response(b"", status_code=200)


async def ready(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    return Response(b"", status_code=200 if state.ready else 503)


async def server_metadata(request: Request) -> Response:
    from mloop import __version__

    return Response(payloads.orjson.dumps({"name": "mloop", "version": __version__,
                                           "extensions": ["binary_tensor_data"]}), media_type=JSON)


async def model_metadata(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    p = request.path_params
    try:
        served = state.by_version(p["name"], p.get("version"))
    except MloopError as exc:
        return _error(exc, True)
    meta = dict(served.metadata)
    if p.get("version") is None:
        meta["versions"] = sorted({s.version_text for s in (state.champion, state.challenger)
                                   if s is not None and s.name == served.name and s.version_text})
    return Response(payloads.orjson.dumps(meta), media_type=JSON)


async def model_ready(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    p = request.path_params
    try:
        state.by_version(p["name"], p.get("version"))
    except MloopError as exc:
        return _error(exc, True)
    return Response(b"", status_code=200 if state.ready else 503)


def _binary_flags(req: payloads.InferRequest, names: list[str]) -> tuple[dict[str, bool], list[str]]:
    if req.outputs is None:
        return {n: req.binary_output for n in names}, names
    flags, wanted = {}, []
    for o in req.outputs:
        name = o["name"]
        if name not in names:
            raise InvalidInput(f"unknown output {name!r}; the model gives {', '.join(names)}")
        params = o.get("parameters") or {}
        flags[name] = bool(params.get("binary_data", req.binary_output))
        wanted.append(name)
    return flags, wanted


async def infer(request: Request) -> Response:
    t0 = time.perf_counter()
    state: ServingState = request.app.state.serving
    rid = _request_id(request)
    try:
        _check_token(state, request)
        p = request.path_params
        if p.get("version") is None:
            served = state.champion
            if served.name != p["name"]:
                served = state.by_version(p["name"], None)
            else:
                served = state.pick(request.headers.get("x-mloop-key"))
        else:
            served = state.by_version(p["name"], p["version"])
        body = await _body(request, state.max_body)
        hlen = request.headers.get("inference-header-content-length")
        try:
            header_length = None if hlen is None else int(hlen)
        except ValueError:
            raise BadRequest(f"bad Inference-Header-Content-Length {hlen!r}") from None
        req = payloads.parse_infer(body, header_length)
        cols, n = payloads.v2_columns(req, served.inputs)
        names = ["prediction", "probabilities"] if served.classes else ["prediction"]
        flags, wanted = _binary_flags(req, names)
        pred, proba = await state.infer(served, cols, n, rid, t0, "infer")
        outs = []
        for name in wanted:
            if name == "prediction":
                outs.append((name, served.prediction_datatype, pred))
            else:
                outs.append((name, "FP64", proba))
        out, header_len = payloads.encode_infer(served.name, served.version_text, req.id or rid, outs, flags)
    except Exception as exc:  # noqa: BLE001 - mapped to a status, never a traceback
        return _fail(state, "infer", exc, True, rid)
    headers = {"x-request-id": rid, "x-mloop-model-version": served.version_text or ""}
    if header_len is not None:
        headers["inference-header-content-length"] = str(header_len)
        media = "application/octet-stream"
    else:
        media = JSON
    state.after(served, rid, t0, cols, n, pred, proba, "infer")
    return Response(out, media_type=media, headers=headers)


def _columns_for(state: ServingState, served: Served, body: bytes) -> tuple[dict, int]:
    if state.input_resolver is None:
        return payloads.parse_predict(body, served.inputs)
    cols, n = payloads.parse_predict(body, None)
    try:
        cols = state.input_resolver(cols, n)
    except MloopError:
        raise
    except LookupError as exc:  # an unknown entity key, or a key column the body lacks
        raise InvalidInput(f"the input resolver could not resolve this request: {exc!r}") from exc
    missing = [c for c in served.inputs if c not in cols]
    if missing:
        raise InvalidInput(f"missing column {missing[0]!r}; the model takes {', '.join(served.inputs)}")
    return {c: cols[c] for c in served.inputs}, n


async def predict(request: Request) -> Response:
    """`/predict` and `/invocations` through Starlette (the ASGI front `HotPaths` usually answers first)."""
    t0 = time.perf_counter()
    state: ServingState = request.app.state.serving
    rid = _request_id(request)
    route = "predict" if request.url.path == "/predict" else "invocations"
    try:
        _check_token(state, request)
        served = state.pick(request.headers.get("x-mloop-key"))
        cols, n = _columns_for(state, served, await _body(request, state.max_body))
        pred, proba = await state.infer(served, cols, n, rid, t0, route)
        out = payloads.encode_predict(rid, served.name, served.version, pred, proba, served.class_keys)
    except Exception as exc:  # noqa: BLE001
        return _fail(state, route, exc, False, rid)
    state.after(served, rid, t0, cols, n, pred, proba, route)
    return Response(out, media_type=JSON,
                    headers={"x-request-id": rid, "x-mloop-model-version": served.version_text or ""})


_HOT = {"/predict": "predict", "/invocations": "invocations"}


class HotPaths:
    """The ASGI front: `POST /predict` and `/invocations` are answered here straight from the ASGI
    messages (no Request/Response objects, no middleware stack); everything else goes to Starlette."""

    def __init__(self, app: Starlette, state: ServingState) -> None:
        self.app = app
        self._serving = state

    def __getattr__(self, name: str) -> Any:  # .state, .routes, ... of the Starlette app
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = _HOT.get(scope["path"])
            if route is not None:
                await self._predict(scope, receive, send, route)
                return
        await self.app(scope, receive, send)

    async def _predict(self, scope: dict, receive: Callable, send: Callable, route: str) -> None:
        t0 = time.perf_counter()
        state = self._serving
        headers = dict(scope["headers"])
        rid_raw = headers.get(b"x-request-id")
        rid = rid_raw.decode("latin-1")[:200] if rid_raw else new_request_id()
        try:
            if state.token is not None:
                auth = headers.get(b"authorization", b"")
                if not auth.startswith(b"Bearer ") or not hmac.compare_digest(auth[7:].strip(), state.token):
                    raise Unauthorized("this server requires 'Authorization: Bearer <token>' (MLOOP_SERVE_TOKEN)")
            key = headers.get(b"x-mloop-key")
            served = state.pick(None if key is None else key.decode("latin-1"))
            body = await _receive_body(receive, headers.get(b"content-length"), state.max_body)
            cols, n = _columns_for(state, served, body)
            pred, proba = await state.infer(served, cols, n, rid, t0, route)
            out = payloads.encode_predict(rid, served.name, served.version, pred, proba, served.class_keys)
        except _ClientGone:
            return
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never a traceback
            await _fail(state, route, exc, False, rid)(scope, receive, send)
            return
        with _one_write(send):
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(out)).encode()),
                (b"x-request-id", rid.encode("latin-1")),
                (b"x-mloop-model-version", (served.version_text or "").encode())]})
            await send({"type": "http.response.body", "body": out})
        state.after(served, rid, t0, cols, n, pred, proba, route)


class _Gathered:
    """Stands in for uvicorn's transport while it writes one response: its writes are kept and
    leave as one `write` (one syscall, one TCP segment) when `_one_write` ends; a `close` waits
    until then. Everything else goes to the real transport."""

    __slots__ = ("transport", "parts", "closing")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def close(self) -> None:
        self.closing = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


@contextmanager
def _one_write(send: Callable) -> Iterator[None]:
    """Send one response in one socket write.

    uvicorn writes a response's status line and headers, then its body, as two writes: two syscalls
    and two TCP segments, each a pass through the kernel's network stack and a wake-up of the client.
    Its per-request cycle (`send.__self__`) writes through its `transport` attribute, so for the
    span of the two `send` calls that attribute is a `_Gathered`. With any other server (no such
    attribute) this does nothing.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        yield
        return
    gathered = _Gathered(transport)
    cycle.transport = gathered
    try:
        yield
    finally:
        cycle.transport = transport
        if gathered.parts and not transport.is_closing():  # a client gone meanwhile gets nothing
            transport.write(b"".join(gathered.parts))
        if gathered.closing:
            transport.close()


class _ClientGone(Exception):
    pass


DRAIN_LIMIT = 64 * 1024 * 1024  # an oversized body up to this is read and dropped, so the 413 arrives


async def _drain(receive: Callable, more: bool, budget: int) -> None:
    while more and budget > 0:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        budget -= len(message.get("body", b""))
        more = message.get("more_body", False)


async def _receive_body(receive: Callable, length: bytes | None, limit: int) -> bytes:
    if length is not None:
        try:
            size = int(length)
        except ValueError:
            raise BadRequest(f"bad Content-Length {length!r}") from None
        if size > limit:
            await _drain(receive, True, DRAIN_LIMIT)
            raise PayloadTooLarge(f"the body is {size} bytes; the limit is {limit} (--max-body)")
    chunks, total, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone()
        chunk = message.get("body", b"")
        total += len(chunk)
        more = message.get("more_body", False)
        if total > limit:
            await _drain(receive, more, DRAIN_LIMIT)
            raise PayloadTooLarge(f"the body is over the {limit}-byte limit (--max-body)")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def feedback(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    rid = _request_id(request)
    try:
        _check_token(state, request)
        doc = payloads.loads(await _body(request, state.max_body))
        items = doc if isinstance(doc, list) else [doc]
        pairs = []
        for item in items:
            if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
                raise InvalidInput("feedback is {\"request_id\": ..., \"label\": ...} or a list of them")
            pairs.append((item["request_id"], item["label"]))
        if state.feedback_sink is None:
            raise NotFound("this server has no metadata store to keep feedback in (a bundle served alone)")
        count = await asyncio.get_running_loop().run_in_executor(None, state.feedback_sink, pairs)
    except Exception as exc:  # noqa: BLE001
        return _fail(state, "feedback", exc, False, rid)
    state.metrics.feedback.inc(count)
    return Response(payloads.orjson.dumps({"accepted": count}), status_code=202, media_type=JSON,
                    headers={"x-request-id": rid})


async def metrics(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    body, ctype = state.metrics.render()
    return Response(body, media_type=ctype)


async def ping(request: Request) -> Response:
    return Response(b"\n", status_code=200)


async def openapi(request: Request) -> Response:
    state: ServingState = request.app.state.serving
    return Response(payloads.orjson.dumps(openapi_spec(state.champion)), media_type=JSON)


async def docs(request: Request) -> Response:
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url="/openapi.json", title="mloop model server")


def openapi_spec(served: Served) -> dict:
    """A small OpenAPI 3 document of the server's routes and the served model's columns."""
    props = {i["name"]: {"type": _json_type(i["dtype"])} for i in served.inputs_spec}
    record = {"type": "object", "properties": props, "required": list(props)}
    err = {"description": "error", "content": {JSON: {"schema": {"type": "object"}}}}

    def op(summary: str, body: dict | None = None, ok: str = "200") -> dict:
        spec: dict[str, Any] = {"summary": summary, "responses": {ok: {"description": "ok"}, "400": err,
                                                                   "404": err, "413": err, "422": err}}
        if body is not None:
            spec["requestBody"] = {"content": {JSON: {"schema": body}}}
        return spec

    predict_body = {"oneOf": [{"type": "array", "items": record},
                              {"type": "object", "properties": {"columns": {"type": "array"},
                                                                "data": {"type": "array"}}},
                              {"type": "object", "properties": {"dataframe_split": {"type": "object"},
                                                                "dataframe_records": {"type": "array"},
                                                                "inputs": {}}}]}
    name = served.name
    return {
        "openapi": "3.0.3",
        "info": {"title": f"mloop model server: {name}", "version": served.version_text or "0"},
        "paths": {
            "/predict": {"post": op("Predict from records, a split frame or an MLflow body", predict_body)},
            "/invocations": {"post": op("MLflow-compatible scoring", predict_body)},
            "/feedback": {"post": op("Labels for earlier requests", {"type": "object", "properties": {
                "request_id": {"type": "string"}, "label": {}}}, ok="202")},
            "/v2/health/live": {"get": op("Server live")},
            "/v2/health/ready": {"get": op("Server ready")},
            "/v2": {"get": op("Server metadata")},
            f"/v2/models/{name}": {"get": op("Model metadata")},
            f"/v2/models/{name}/ready": {"get": op("Model ready")},
            f"/v2/models/{name}/infer": {"post": op("V2 inference (JSON or binary tensors)", {"type": "object"})},
            "/metrics": {"get": op("Prometheus metrics")},
        },
    }


def _json_type(dtype: str) -> str:
    if dtype.startswith(("int", "uint")):
        return "integer"
    if dtype.startswith("float"):
        return "number"
    if dtype == "bool":
        return "boolean"
    return "string"


def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    v2 = request.url.path.startswith("/v2")
    msg = (f"no route {request.method} {request.url.path}" if status == 404
           else f"method {request.method} not allowed on {request.url.path}")
    code = "not_found" if status == 404 else "method_not_allowed"
    return Response(payloads.error_body(msg, None if v2 else code), status_code=status, media_type=JSON)


def _server_error(request: Request, exc: Exception) -> Response:
    return _error(exc, request.url.path.startswith("/v2"))


def routes() -> list[Route]:
    m = "/v2/models/{name}"
    mv = "/v2/models/{name}/versions/{version}"
    return [
        Route("/predict", predict, methods=["POST"]),
        Route("/invocations", predict, methods=["POST"]),
        Route(f"{m}/infer", infer, methods=["POST"]),
        Route(f"{mv}/infer", infer, methods=["POST"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route(m, model_metadata, methods=["GET"]),
        Route(mv, model_metadata, methods=["GET"]),
        Route(f"{m}/ready", model_ready, methods=["GET"]),
        Route(f"{mv}/ready", model_ready, methods=["GET"]),
        Route("/feedback", feedback, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]


def build_app(state: ServingState, *, on_startup: list | None = None, on_shutdown: list | None = None) -> HotPaths:
    """The ASGI app over a prepared state (the hot paths in front of Starlette); startup and
    shutdown hooks run in the lifespan."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette):  # noqa: ANN202
        for hook in on_startup or ():
            hook()
        try:
            yield
        finally:
            state.ready = False
            for hook in on_shutdown or ():
                try:
                    hook()
                except Exception:  # noqa: BLE001 - shutdown goes on
                    log.exception("shutdown hook failed")

    app = Starlette(routes=routes(), lifespan=lifespan,
                    exception_handlers={404: _not_found, 405: _not_found, 500: _server_error})
    app.state.serving = state
    return HotPaths(app, state)
