"""localstripe, the stateful Stripe stand-in, in a subprocess on a loopback port.

The launcher keeps localstripe's store in memory (it pickles to /tmp by default)
and binds 127.0.0.1 only (it listens on every interface by default).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import ClientSession, web

LAUNCHER = """
import socket, sys
from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
web.run_app(server.app, sock=sock, print=None, access_log=None)
"""

# A webhook endpoint id of our own: registering it again replaces it.
WEBHOOK_ID = "plugpay-tests"


class LocalstripeUnavailable(RuntimeError):
    pass


@contextmanager
def run_localstripe(log_path: Path, start_timeout: float = 20.0) -> Iterator[str]:
    """Start localstripe, wait until it answers, yield its base URL, stop it."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, stderr=log
        )
    try:
        base_url = _wait_until_ready(process, log_path, start_timeout)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.isdigit():
        process.wait(5)
        raise LocalstripeUnavailable(
            f"localstripe did not start: {log_path.read_text(errors='replace')[-2000:]}"
        )
    base_url = f"http://127.0.0.1:{line}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            # The stand-in for Stripe.js needs no key: a cheap "are you up".
            if httpx.get(f"{base_url}/js.stripe.com/v3/", timeout=1).status_code == 200:
                return base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise LocalstripeUnavailable(
        f"localstripe did not answer at {base_url}: {log_path.read_text(errors='replace')[-2000:]}"
    )


def wipe(base_url: str) -> None:
    """Forget every object (customers, intents, charges…) between tests."""
    httpx.delete(f"{base_url}/_config/data", timeout=5).raise_for_status()


async def register_webhook(
    base_url: str, url: str, secret: str, events: list[str] | None = None
) -> None:
    """Have localstripe deliver its events to ``url``, signed with ``secret``."""
    data: dict[str, str] = {"url": url, "secret": secret}
    for index, event in enumerate(events or ()):
        data[f"events[{index}]"] = event
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base_url}/_config/webhooks/{WEBHOOK_ID}", data=data)
        response.raise_for_status()


async def silence_webhook(base_url: str) -> None:
    """localstripe cannot forget a webhook (its data wipe keeps them): filter every
    event out so no later test's events go to a receiver that is gone."""
    await register_webhook(base_url, "http://127.0.0.1:9/", "unused", ["plugpay.none"])


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingProxy:
    """A loopback HTTP proxy in front of localstripe that records every request,
    so a test can see what the SDK really sent (headers, form fields)."""

    upstream: str
    requests: list[Recorded] = field(default_factory=list)
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        self.requests.append(Recorded(request.method, request.path_qs, headers, body))
        async with (
            ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body
            ) as upstream,
        ):
            return web.Response(
                status=upstream.status,
                body=await upstream.read(),
                content_type=upstream.content_type,
            )
