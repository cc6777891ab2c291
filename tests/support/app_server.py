"""Run an app built by the test (e.g. with a Web Push sender of its own) under uvicorn."""

from __future__ import annotations

from litestar import Litestar

from plugpay.config import Settings
from support.server import RunningServer, start_server


async def start_app(settings: Settings, app: Litestar, port: int | None = None) -> RunningServer:
    return await start_server(settings, port, app=app)
