"""Guest starts are limited per client address and per connector: past the limit the
start page answers 429 with Retry-After and the connector page's words, and nothing
is reserved or held."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from conftest import make_settings
from plugpay.store import tables as t
from support.driver import Phone, csrf_of, demo_site
from support.server import RunningServer, start_server
from support.sessions import charger, run_charger, session_id_of


@pytest.fixture
async def strict_server(database_url: str) -> AsyncIterator[RunningServer]:
    settings = make_settings(
        database_url, guest_starts_per_address=2, guest_starts_per_connector=100
    )
    server = await start_server(settings)
    yield server
    await server.stop()


async def sessions_count(server: RunningServer) -> int:
    async with server.runtime.db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(t.charging_sessions)) or 0)


async def test_starts_past_the_limit_are_refused_with_retry_after_and_change_nothing(
    strict_server: RunningServer,
) -> None:
    server = strict_server
    await demo_site(server)
    sim = charger(server, meter_interval=0.2)
    task = await run_charger(server, sim)
    phone = Phone(server)
    try:
        for _ in range(2):  # two starts, each given up: within the limit
            session_id = session_id_of(await phone.start("CP-1", 1))
            page = await phone.client.get(f"/pay/{session_id}")
            await phone.client.post(
                f"/pay/{session_id}/cancel", data={"_csrf_token": csrf_of(page.text)}
            )
        before = await sessions_count(server)
        intents = len(await server.runtime.jobs.listing())
        page = await phone.client.get("/c/CP-1/1")
        refused = await phone.client.post(
            "/c/CP-1/1/start", data={"_csrf_token": csrf_of(page.text)}
        )
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 600
        assert "Too many starts from this device or network" in refused.text
        assert await sessions_count(server) == before
        assert len(await server.runtime.jobs.listing()) == intents
        # Another client is not affected.
        other = Phone(server)
        try:
            other.client.headers["x-forwarded-for"] = "203.0.113.9"
            allowed = await other.start("CP-1", 1)
            assert allowed.status_code == 303, allowed.text
        finally:
            await other.close()
    finally:
        await phone.close()
        await sim.close()
        task.cancel()
