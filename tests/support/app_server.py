"""Run an app built by the test (e.g. with a Web Push sender of its own) under uvicorn."""

from __future__ import annotations

import asyncio

import uvicorn
from litestar import Litestar

from plugpay.cli.serve import uvicorn_config
from plugpay.config import Settings
from support.server import RunningServer, free_port


async def start_app(settings: Settings, app: Litestar, port: int | None = None) -> RunningServer:
    port = port or free_port()
    config = uvicorn_config(settings, "127.0.0.1", port, app=app, log_level="warning")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError("server did not start")
    return RunningServer(settings, port, server, task)
