"""Drivers' phones for the live-latency benchmark: start, pay, and watch the live page.

Run as a script in its own process (so its CPU is not the server's)::

    python phones.py --port P --first 0 --count 250 [--prefix LV] [--parallel 8]

For each charger ``{prefix}{first}..`` one phone (its own cookie jar, over one
shared aiohttp connection pool) does what a browser does in the guest flow,
as ``tests/support/driver.py`` does it: GET ``/c/{charger}/1``, POST
``.../start`` with the page's ``_csrf_token`` (303 to ``/pay/{id}``, setting the
``plugpay_owner`` cookie), GET ``/pay/{id}``, POST ``/pay/{id}/demo`` with
``card=approve`` (303 to ``/s/{id}``; the server starts the charge with a
RemoteStartTransaction to the charger). Then it opens ``/s/{id}/events`` with
the owner cookie and keeps reading it.

Once every stream has shown its session CHARGING (or failed), one JSON line.
From then on every ``update`` event is noted: the energy figure of its
``#energy`` element, in Wh, and ``time.monotonic_ns()`` when the chunk that
completed the event arrived. A line on stdin ends the watch: one JSON line
with those notes per charger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/, for ocpp_ingest

from ocpp_ingest.load import die_with_parent, raise_nofile

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
STATE = re.compile(rb'data-state="([A-Z_]+)"')
ENERGY = re.compile(rb'id="energy">([0-9.,]+)')


class FlowError(Exception):
    pass


class Phone:
    def __init__(self, connector: aiohttp.BaseConnector, base: str, charger_id: str) -> None:
        self.http = aiohttp.ClientSession(
            base_url=base,
            connector=connector,
            connector_owner=False,
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
            headers={"Accept-Language": "en"},
            timeout=aiohttp.ClientTimeout(total=60),
        )
        self.charger_id = charger_id
        self.session_id = ""
        self.charging = asyncio.Event()
        self.ended = asyncio.Event()
        self.recording = False
        self.received: dict[int, int] = {}  # energy Wh -> monotonic_ns, first sighting
        self.events = 0
        self.problem: str | None = None

    async def token(self, path: str) -> str:
        async with self.http.get(path) as response:
            text = await response.text()
            if response.status != 200:
                raise FlowError(f"GET {path}: {response.status}")
        match = CSRF.search(text)
        if match is None:
            raise FlowError(f"GET {path}: no CSRF token")
        return match.group(1)

    async def post(self, path: str, data: dict[str, str], expect: str) -> str:
        async with self.http.post(path, data=data, allow_redirects=False) as response:
            location = response.headers.get("Location", "")
            if response.status != 303 or not location.startswith(expect):
                raise FlowError(f"POST {path}: {response.status} to {location or '-'}")
        return location

    async def start_and_pay(self) -> None:
        connector = f"/c/{self.charger_id}/1"
        token = await self.token(connector)
        location = await self.post(f"{connector}/start", {"_csrf_token": token}, "/pay/")
        self.session_id = location.rsplit("/", 1)[-1]
        token = await self.token(location)
        await self.post(
            f"/pay/{self.session_id}/demo",
            {"_csrf_token": token, "card": "approve"},
            f"/s/{self.session_id}",
        )

    async def watch(self) -> None:
        """Read the event stream until it ends; note the energy figure of every update."""
        try:
            async with self.http.get(
                f"/s/{self.session_id}/events",
                headers={"Accept": "text/event-stream"},
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            ) as response:
                if response.status != 200:
                    raise FlowError(f"events: {response.status}")
                buffer = b""
                async for chunk in response.content.iter_any():
                    arrived = time.monotonic_ns()
                    *events, buffer = (buffer + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
                    for event in events:
                        self.on_event(event, arrived)
        except (aiohttp.ClientError, FlowError, TimeoutError) as exc:
            self.problem = self.problem or f"{type(exc).__name__} {exc}"[:200]
        finally:
            if not self.charging.is_set():
                self.problem = self.problem or "the stream ended before the session was CHARGING"
            self.ended.set()
            self.charging.set()  # nothing more will come: do not wait for it

    def on_event(self, event: bytes, arrived: int) -> None:
        if b"event: update" not in event:
            return  # a keep-alive comment or the closing event
        self.events += 1
        state = STATE.search(event)
        if state is not None and state.group(1) == b"CHARGING":
            self.charging.set()
        if not self.recording:
            return
        energy = ENERGY.search(event)
        if energy is not None:
            wh = int(Decimal(energy.group(1).replace(b",", b"").decode()) * 1000)
            self.received.setdefault(wh, arrived)


async def run(args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    base = f"http://127.0.0.1:{args.port}"
    ids = [f"{args.prefix}{n}" for n in range(args.first, args.first + args.count)]
    phones = [Phone(connector, base, charger_id) for charger_id in ids]
    gate = asyncio.Semaphore(args.parallel)
    watching: list[asyncio.Task[None]] = []
    began = time.monotonic()

    async def one(phone: Phone) -> None:
        async with gate:
            try:
                await phone.start_and_pay()
            except (aiohttp.ClientError, FlowError, TimeoutError) as exc:
                phone.problem = f"{phone.charger_id}: {type(exc).__name__} {exc}"[:200]
                phone.charging.set()
                return
        watching.append(asyncio.get_running_loop().create_task(phone.watch()))
        try:
            await asyncio.wait_for(phone.charging.wait(), args.timeout)
        except TimeoutError:
            phone.problem = f"{phone.charger_id}: not CHARGING after {args.timeout:g} s"

    await asyncio.gather(*(one(p) for p in phones))
    live = [p for p in phones if p.problem is None]
    for phone in live:
        phone.recording = True
    problems = [p.problem for p in phones if p.problem is not None]
    print(
        json.dumps(
            {
                "charging": len(live),
                "failed": len(problems),
                "failures": problems[:5],
                "seconds": time.monotonic() - began,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    ended = [p for p in live if p.ended.is_set()]
    print(
        json.dumps(
            {
                "received": {p.charger_id: sorted(p.received.items()) for p in live},
                "events": sum(p.events for p in live),
                "ended_early": len(ended),
                "ended_sample": [p.problem for p in ended if p.problem][:5],
            }
        ),
        flush=True,
    )
    for task in watching:
        task.cancel()
    await asyncio.gather(*watching, return_exceptions=True)
    await asyncio.gather(*(p.http.close() for p in phones), return_exceptions=True)
    await connector.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="LV")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=250)
    parser.add_argument("--parallel", type=int, default=8, help="sessions started at a time")
    parser.add_argument("--timeout", type=float, default=120.0, help="wait for CHARGING")
    args = parser.parse_args()
    die_with_parent()
    raise_nofile()
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run(args))


if __name__ == "__main__":
    main()
