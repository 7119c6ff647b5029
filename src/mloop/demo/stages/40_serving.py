"""Stage: serve the champion on a free port, send it traffic, and watch the prediction log fill."""

from __future__ import annotations

TITLE = "serving: the champion behind the V2 protocol and /predict, every answer logged"


def run(ctx) -> None:  # noqa: ANN001
    import threading
    import time

    import httpx
    import uvicorn

    from mloop.serving import create_app, read_predictions

    uri = ctx.state.get("champion_uri")
    if not uri:
        ctx.say("[yellow]no champion_uri from the registry stage; skipping the serving stage[/yellow]")
        return
    df = ctx.state.get("valid_df")
    if df is None:
        from mloop.demo.data import generate_churn

        df = generate_churn(500, seed=ctx.seed)
    app = create_app(uri, batching=True, reload_interval=0)
    served = app.state.serving.champion
    # Rows with a missing value are left out: the model was trained on filled-in ages and refuses
    # NaN (the server would answer those with a 422 naming the problem).
    rows = df[served.inputs].dropna().head(200 if ctx.quick else 2000)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the demo model server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    ctx.say(f"serving {uri} (version {served.version}) on http://127.0.0.1:{port}")
    logged = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            records = rows.to_dict("records")
            chunk = max(1, len(records) // 4)
            for part in range(4):
                t0 = time.perf_counter()
                for rec in records[part * chunk:(part + 1) * chunk]:
                    client.post("/predict", json=[rec]).raise_for_status()
                elapsed = time.perf_counter() - t0
                app.state.serving.logger.flush()  # the server flushes every 10 s; the demo cannot wait
                logged.append([part + 1, (part + 1) * chunk, read_predictions(served.name).num_rows,
                               f"{chunk / elapsed:.0f}"])
            full = records[0]
            v2 = client.post(f"/v2/models/{served.name}/infer", json={"inputs": [
                {"name": c, "shape": [1], "datatype": "BYTES" if isinstance(full[c], str) else "FP64",
                 "data": [full[c]]} for c in served.inputs]})
            metrics = client.get("/metrics").text
    finally:
        server.should_exit = True
        thread.join(30)
    ctx.table("prediction log filling", ["batch", "requests sent", "rows in the log", "req/s (demo client)"], logged)
    answered = next((line for line in metrics.splitlines() if line.startswith("mloop_requests_total{")), "")
    ctx.say(f"V2 infer answered {v2.status_code}; /metrics: {answered}")
    log = read_predictions(served.name)
    ctx.say(f"the log holds {log.num_rows} rows with columns {', '.join(log.column_names[:8])}, ...")
    ctx.state["deployment_id"] = app.state.deployment_id
