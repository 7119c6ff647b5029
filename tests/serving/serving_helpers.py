"""Helpers for the model-server tests: a churn-like frame, registered scikit-learn pipelines, and a
uvicorn server on a real port (port 0, in a thread), started and stopped with deadlines."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd

FEATURES = ["age", "income", "tenure", "plan"]


def churn_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 80, n).astype("int64"),
        "income": rng.normal(50_000, 15_000, n).round(2),
        "tenure": rng.normal(3, 1.5, n).round(3),
        "plan": rng.choice(["basic", "plus", "pro"], n),
    })
    logit = (df.age - 45) / 15 + (df.income - 50_000) / 20_000 + np.where(df.plan == "pro", 1.0, 0.0)
    df["churn"] = (logit + rng.normal(0, 0.5, n) > 0).astype("int64")
    return df


def fit_pipeline(df: pd.DataFrame, C: float = 1.0):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pipe = Pipeline([
        ("prep", ColumnTransformer([("num", StandardScaler(), ["age", "income", "tenure"]),
                                    ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])),
        ("clf", LogisticRegression(C=C, max_iter=500)),
    ])
    return pipe.fit(df[FEATURES], df["churn"])


def register(name: str, df: pd.DataFrame, C: float = 1.0, alias: str | None = None):
    import mloop

    model = fit_pipeline(df, C)
    with mloop.start_run(experiment="serving-tests") as run:
        mv = run.log_model(model, name, input_example=df[FEATURES].head(5), register=True)
    if alias:
        mloop.models.set_alias(name, alias, mv.version)
    return mv, model


class ServerThread:
    """uvicorn serving an app on 127.0.0.1:0 in a thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                                access_log=False, loop="asyncio", http="httptools")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive(), "server did not stop"




def wait_until(predicate, timeout: float = 30.0, interval: float = 0.01, what: str = "condition"):
    """Poll until truthy or the deadline passes (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


NUMERIC = ["age", "income", "tenure"]


def register_numeric(name: str, df: pd.DataFrame, alias: str | None = "champion"):
    """StandardScaler + LogisticRegression on the numeric columns (the benchmark's model shape)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mloop

    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(df[NUMERIC], df["churn"])
    with mloop.start_run(experiment="serving-tests") as run:
        mv = run.log_model(model, name, input_example=df[NUMERIC].head(5), register=True)
    if alias:
        mloop.models.set_alias(name, alias, mv.version)
    return mv, model


async def raw_post_many(host: str, port: int, path: str, bodies: list[tuple[str, bytes]], concurrency: int,
                        timeout: float = 60.0) -> dict[str, tuple[int, bytes]]:
    """POST each `(request_id, body)` over `concurrency` keep-alive HTTP/1.1 connections with a
    minimal client (cheap enough that the server, not the client, is what a load test measures).
    Returns `{request_id: (status, body)}`; a transport failure is status -1."""
    import asyncio

    queue = list(reversed(bodies))
    out: dict[str, tuple[int, bytes]] = {}

    async def worker() -> None:
        reader = writer = None
        while queue:
            rid, body = queue.pop()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                        f"x-request-id: {rid}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                writer.write(head + body)
                await writer.drain()
                status_line = await asyncio.wait_for(reader.readline(), timeout)
                status = int(status_line.split()[1])
                length, close = 0, False
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                out[rid] = (status, await reader.readexactly(length))
                if close:
                    writer.close()
                    reader = writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
                out[rid] = (-1, repr(exc).encode())
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out
