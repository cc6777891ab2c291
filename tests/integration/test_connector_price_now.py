"""The connector page marks which time-of-use price a charge started now gets, and
says when it changes; a tariff with one price marks nothing."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.driver import demo_site
from support.server import RunningServer

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"


async def test_the_price_that_applies_now_is_marked(server: RunningServer) -> None:
    await demo_site(server)  # the time-of-use example: three energy prices
    async with httpx.AsyncClient(base_url=server.http_url, headers={"Accept-Language": "de"}) as c:
        page = (await c.get("/c/CP-1/1")).text
        assert page.count('class="price-row now"') == 1
        assert 'data-state="now">jetzt</span>' in page
        assert "Der Preis ändert sich um" in page

        tariffs = server.runtime.services.tariffs
        await tariffs.import_tariff((EXAMPLES / "simple-per-kwh.json").read_bytes())
        await tariffs.assign("SIMPLE-KWH", charger_id="CP-1", connector_id=2)
        simple = (await c.get("/c/CP-1/2")).text
        assert "price-row now" not in simple and "Der Preis ändert sich" not in simple
