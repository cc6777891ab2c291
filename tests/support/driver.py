"""A driver's phone, as far as HTTP goes: cookies, CSRF tokens, the flow's requests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from plugpay.sim.charger import VirtualCharger
from support.server import RunningServer

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
PASSWORD = "correct-horse-battery-staple"


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 15.0, every: float = 0.05
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Phone:
    def __init__(self, server: RunningServer, lang: str = "en") -> None:
        self.client = httpx.AsyncClient(
            base_url=server.http_url, headers={"Accept-Language": lang}, timeout=20
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def start(self, charger_id: str, connector_id: int) -> httpx.Response:
        page = await self.client.get(f"/c/{charger_id}/{connector_id}")
        assert page.status_code == 200, page.text
        return await self.client.post(
            f"/c/{charger_id}/{connector_id}/start", data={"_csrf_token": csrf_of(page.text)}
        )

    async def pay(self, session_id: str, card: str = "approve") -> httpx.Response:
        page = await self.client.get(f"/pay/{session_id}")
        assert page.status_code == 200, page.text
        return await self.client.post(
            f"/pay/{session_id}/demo", data={"_csrf_token": csrf_of(page.text), "card": card}
        )

    async def stop(self, session_id: str) -> httpx.Response:
        page = await self.client.get(f"/s/{session_id}")
        return await self.client.post(
            f"/s/{session_id}/stop", data={"_csrf_token": csrf_of(page.text)}
        )


async def demo_site(
    server: RunningServer, tariff: str = "time-of-use-idle-fee.json", connectors: int = 2
) -> tuple[str, str]:
    """Register CP-1 with a tariff; returns (charger id, tariff id)."""
    services = server.runtime.services
    stored = await services.tariffs.import_tariff((EXAMPLES / tariff).read_bytes())
    await services.chargers.add_charger(
        "CP-1", PASSWORD, connectors=connectors, site="Test site", time_zone="Europe/Berlin"
    )
    await services.tariffs.assign(stored.tariff_id, charger_id="CP-1")
    return "CP-1", stored.tariff_id


async def running_sim(
    server: RunningServer, version: str = "1.6", **kwargs: Any
) -> tuple[VirtualCharger, asyncio.Task[None]]:
    sim = VirtualCharger("CP-1", server.ocpp_url, PASSWORD, version, **kwargs)
    task = asyncio.get_running_loop().create_task(sim.run())
    await asyncio.wait_for(sim.booted.wait(), 10)

    async def available() -> bool:
        view = await server.runtime.charger_store.get("CP-1")
        return (
            view is not None
            and view.connected
            and all(c.status == "Available" for c in view.connectors)
        )

    await eventually(available)
    return sim, task


async def stop_sim(sim: VirtualCharger, task: asyncio.Task[None]) -> None:
    await sim.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
