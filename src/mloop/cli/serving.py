"""`mloop serve` and `mloop build`: run a model server, or write a self-contained bundle."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("build")(build)


def serve(
    uri: str = typer.Argument(..., help="Model URI (churn@champion, churn/3) or a bundle directory."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8080, "--port", help="0 picks a free port."),
    workers: int = typer.Option(1, "--workers", min=1),
    batching: bool = typer.Option(True, "--batching/--no-batching",
                                  help="Coalesce concurrent requests into one model call on a worker thread "
                                       "(on by default; --no-batching runs each request's call inline)."),
    max_batch: int = typer.Option(1024, "--max-batch", min=1, help="Rows per batched model call at most."),
    max_latency_ms: float = typer.Option(0.0, "--max-latency-ms", min=0.0,
                                         help="Extra wait to fill a batch under load."),
    challenger: str = typer.Option(None, "--challenger", help="A second model URI for a canary."),
    canary: float = typer.Option(0.0, "--canary", min=0.0, max=1.0, help="Share of traffic for the challenger."),
    shadow: str = typer.Option(None, "--shadow", help="A model URI that sees a copy of every request."),
    reload_interval: float = typer.Option(5.0, "--reload-interval", help="Seconds between alias polls (0: off)."),
    onnx: bool = typer.Option(False, "--onnx", help="Serve through onnxruntime when the model converts exactly."),
    token: str = typer.Option(None, "--token", envvar="MLOOP_SERVE_TOKEN",
                              help="Require 'Authorization: Bearer TOKEN' on inference and feedback."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a non-loopback bind without a token."),
    max_body: int = typer.Option(10 * 1024 * 1024, "--max-body", help="Largest request body in bytes."),
    no_log: bool = typer.Option(False, "--no-log", help="Do not write the prediction log."),
    trust: bool = typer.Option(False, "--trust", help="Allow pickle-based flavors."),
) -> None:
    """Serve a model: V2 inference protocol, /predict, /invocations, /metrics, /feedback."""
    from mloop.serving.server import ServeOptions, check_bind
    from mloop.serving.server import serve as run_server

    insecure = insecure or os.environ.get("MLOOP_SERVE_INSECURE") == "1"
    check_bind(host, token, insecure)
    opts = ServeOptions(uri=uri, host=host, port=port, workers=workers, batching=batching, max_batch=max_batch,
                        max_latency_ms=max_latency_ms, challenger=challenger, canary=canary, shadow=shadow,
                        reload_interval=reload_interval, onnx=onnx, token=token, max_body=max_body,
                        log_predictions=not no_log, trust=trust)
    run_server(opts, announce=typer.echo)


def build(
    uri: str = typer.Argument(..., help="Model URI to bundle."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory to write (must be empty or new)."),
) -> None:
    """Write a self-contained bundle: model, requirements.txt, Dockerfile, Kubernetes manifests."""
    from mloop.serving.bundle import build_bundle

    info = build_bundle(uri, output)
    typer.echo(f"wrote bundle of {info['name']}/{info['version']} to {output}")
