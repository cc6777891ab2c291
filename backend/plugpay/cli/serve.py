"""``plugpay serve``: HTTP, SSE and the OCPP WebSocket on one port."""

from __future__ import annotations

import argparse
import gc
import logging
from typing import Any

import uvicorn

from plugpay.cli.common import check_port
from plugpay.config import Settings, load_settings
from plugpay.ocpp.transport import ChargerWebSocketProtocol
from plugpay.store.migrate import upgrade


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="run the server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.set_defaults(run=run)


def uvicorn_config(
    settings: Settings, host: str, port: int, app: Any = None, **overrides: Any
) -> uvicorn.Config:
    from plugpay.app import create_app

    options: dict[str, Any] = {
        # uvicorn's sans-I/O protocol keeps no extra task per connection (the
        # cheapest way to hold thousands of idle chargers), with flow control
        # fitted to chargers (see plugpay.ocpp.transport).
        "ws": ChargerWebSocketProtocol,
        "ws_ping_interval": 60,
        "ws_ping_timeout": 60,
        "proxy_headers": True,
        "server_header": False,
        "log_level": "info",
        "backlog": 4096,
        # Open event streams never end by themselves; browsers reconnect with
        # Last-Event-ID, so a restart need not wait for them.
        "timeout_graceful_shutdown": 5,
    }
    options.update(overrides)
    return uvicorn.Config(app or create_app(settings), host=host, port=port, **options)


def settle_heap() -> None:
    """Call once the app is built, before serving. Everything allocated so far
    (modules, the app, the engine) lives as long as the process: frozen, the
    garbage collector no longer walks it on every full collection, which
    otherwise takes tens of milliseconds (a stall every live reading waits
    out). Higher thresholds make young collections rarer and full ones rare
    (minutes apart under load instead of seconds)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1000)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    check_port(args.host, args.port, "choose another with --port")
    settings = load_settings()
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)  # the embedded default migrates itself
    config = uvicorn_config(settings, args.host, args.port)
    settle_heap()
    uvicorn.Server(config).run()
    return 0
