"""Run the real app under uvicorn on a free loopback port, inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

from plugpay.cli.serve import uvicorn_config
from plugpay.config import Settings
from plugpay.runtime import Runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    settings: Settings
    port: int
    server: uvicorn.Server
    task: asyncio.Task[Any]

    @property
    def runtime(self) -> Runtime:
        return self.server.config.app.state.runtime  # type: ignore[no-any-return]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def start_server(
    settings: Settings, port: int | None = None, app: Any = None
) -> RunningServer:
    """The real app (or one the test built, e.g. with its own push sender) on loopback."""
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
