"""The live session over Server-Sent Events: fast, resumable, true after a drop or a
restart, and across server instances sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import make_settings
from plugpay.sim.charger import VirtualCharger
from support.databases import PostgresDatabases
from support.driver import Phone, demo_site, eventually, stop_sim
from support.server import RunningServer, start_server
from support.sessions import charger, record_of, run_charger, session_id_of, wait_for_state
from support.sse import SseEvent, SseStream

REDIS_URL = os.environ.get("PLUGPAY_TEST_REDIS_URL")


@pytest.fixture
async def quiet_charger(server: RunningServer) -> AsyncIterator[VirtualCharger]:
    """CP-1 on the test's server, metering only when the test says so."""
    await demo_site(server)
    sim = charger(server, meter_interval=3600.0, power_kw=22.0)
    task = await run_charger(server, sim)
    yield sim
    await stop_sim(sim, task)


@pytest.fixture
async def phone(server: RunningServer) -> AsyncIterator[Phone]:
    phone = Phone(server)
    yield phone
    await phone.close()


async def reading(sim: VirtualCharger, wh: int = 250) -> float:
    """The charger meters ``wh`` more and sends MeterValues now; when it did."""
    sim.connectors[1].meter_wh += wh
    sent = time.monotonic()
    await sim.triggered("MeterValues", 1)
    return sent


async def charging_quietly(server: RunningServer, phone: Phone) -> str:
    session_id = session_id_of(await phone.start("CP-1", 1))
    await phone.pay(session_id)
    await wait_for_state(server, session_id, "CHARGING")
    return session_id


async def next_update(events: SseStream, timeout: float = 5.0) -> SseEvent:
    event = await events.next(timeout)
    assert event.event == "update", event
    return event


async def test_a_meter_reading_reaches_the_live_page_within_a_second(
    server: RunningServer, quiet_charger: VirtualCharger, phone: Phone
) -> None:
    session_id = await charging_quietly(server, phone)
    async with SseStream(phone.client, f"/s/{session_id}/events") as events:
        assert events.status == 200
        first = await next_update(events)
        assert first.state == "CHARGING"
        assert first.version == (await record_of(server, session_id)).version

        delays = []
        version = first.version
        for _ in range(5):
            sent = await reading(quiet_charger)
            update = await next_update(events, timeout=2.0)
            delays.append(update.received - sent)
            assert update.version > version
            version = update.version
            record = await record_of(server, session_id)
            assert update.version == record.version and record.energy_wh > 0
            assert update.state == "CHARGING"
        assert max(delays) < 1.0, delays


async def test_the_action_bar_comes_with_a_change_of_state_only(
    server: RunningServer, quiet_charger: VirtualCharger, phone: Phone
) -> None:
    """Between readings the Stop button is left alone (its focus, its question); the
    first update and every change of state bring the bar for the state at hand."""
    session_id = await charging_quietly(server, phone)
    async with SseStream(phone.client, f"/s/{session_id}/events") as events:
        first = await next_update(events)
        assert 'id="live-actions"' in first.data and 'id="stop"' in first.data
        for _ in range(2):
            await reading(quiet_charger)
            update = await next_update(events)
            assert update.state == "CHARGING"
            assert 'id="live-actions"' not in update.data
        await phone.stop(session_id)
        while (update := await next_update(events, timeout=10.0)).state == "CHARGING":
            assert 'id="live-actions"' not in update.data
        assert 'id="live-actions"' in update.data
        assert 'id="stop"' not in update.data  # stopping: nothing left to press


async def test_resuming_with_the_current_last_event_id_repeats_nothing(
    server: RunningServer, quiet_charger: VirtualCharger, phone: Phone
) -> None:
    session_id = await charging_quietly(server, phone)
    await reading(quiet_charger)

    async def priced() -> bool:
        return (await record_of(server, session_id)).energy_wh > 0

    await eventually(priced)
    current = (await record_of(server, session_id)).version
    path = f"/s/{session_id}/events"

    async with SseStream(phone.client, path, last_event_id=str(current)) as events:
        assert await events.nothing_within(0.5)  # the page already shows this snapshot
        await reading(quiet_charger)
        update = await next_update(events)
        assert update.version > current

    async with SseStream(phone.client, path, last_event_id=str(current - 1)) as events:
        fresh = await next_update(events, timeout=1.0)
        assert fresh.version == (await record_of(server, session_id)).version

    async with SseStream(phone.client, path, last_event_id="not-a-version") as events:
        fresh = await next_update(events, timeout=1.0)
        assert fresh.version == (await record_of(server, session_id)).version


async def test_a_dropped_stream_reconnects_to_the_true_state(
    server: RunningServer, quiet_charger: VirtualCharger, phone: Phone
) -> None:
    session_id = await charging_quietly(server, phone)
    path = f"/s/{session_id}/events"
    events = SseStream(phone.client, path)
    async with events:
        last_seen = await next_update(events)
    # The phone is away (tunnel, lift) while the charge goes on and ends.
    for _ in range(3):
        await reading(quiet_charger)
    await phone.stop(session_id)
    record = await wait_for_state(server, session_id, "SETTLED")

    async with SseStream(phone.client, path, last_event_id=last_seen.id) as events:
        truth = await next_update(events, timeout=1.0)
        assert truth.version == record.version > last_seen.version
        assert truth.state == "SETTLED"
        # Nothing more will come: the stream says so and ends.
        closing = await events.next(timeout=1.0)
        assert closing.event == "close"
        await asyncio.wait_for(events.ended.wait(), 2)


async def test_the_live_stream_shows_the_true_state_after_a_server_restart(
    database_url: str,
) -> None:
    first = await start_server(make_settings(database_url))
    await demo_site(first)
    sim = charger(first, meter_interval=3600.0, power_kw=22.0)
    task = await run_charger(first, sim)
    phone = Phone(first)
    second: RunningServer | None = None
    try:
        session_id = await charging_quietly(first, phone)
        path = f"/s/{session_id}/events"
        async with SseStream(phone.client, path) as events:
            await reading(sim)
            seen = await next_update(events)
            while seen.version < (await record_of(first, session_id)).version:
                seen = await next_update(events)
        # The restart takes the phone's connection with it.
        await first.stop()

        second = await start_server(make_settings(database_url), first.port)

        async def back() -> bool:
            return second is not None and second.runtime.registry.get("CP-1") is not None

        await eventually(back)
        # The charger stamps readings to the millisecond.
        asked = datetime.now(UTC)
        asked = asked.replace(microsecond=asked.microsecond // 1000 * 1000)
        await reading(sim)

        async def priced_again() -> bool:
            # This reading, not any change: what the charger kept while it was
            # away may arrive first and move the session too.
            assert second is not None
            last = (await record_of(second, session_id)).last_reading_at
            return last is not None and last >= asked

        await eventually(priced_again)
        async with SseStream(phone.client, path, last_event_id=seen.id) as events:
            truth = await next_update(events, timeout=1.0)
            record = await record_of(second, session_id)
            assert truth.version == record.version and truth.state == "CHARGING"
            sent = await reading(sim)
            update = await next_update(events, timeout=2.0)
            assert update.version > truth.version and update.received - sent < 1.0
    finally:
        await phone.close()
        await stop_sim(sim, task)
        await first.stop()
        if second is not None:
            await second.stop()


@pytest.fixture
def shared_database(postgres_databases: PostgresDatabases | None) -> str:
    if postgres_databases is None or REDIS_URL is None:
        pytest.skip("needs PLUGPAY_TEST_DATABASE_URL and PLUGPAY_TEST_REDIS_URL")
    return postgres_databases.fresh()


@pytest.mark.postgres
async def test_the_driver_on_one_instance_sees_readings_priced_on_another(
    shared_database: str,
) -> None:
    settings: dict[str, Any] = {"redis_url": REDIS_URL}
    near = await start_server(make_settings(shared_database, **settings))  # holds the charger
    far = await start_server(make_settings(shared_database, **settings))  # serves the driver
    await demo_site(near)
    sim = charger(near, meter_interval=3600.0, power_kw=22.0)
    task = await run_charger(near, sim)
    phone = Phone(far)
    try:
        # Every request of the driver lands on the instance without the charger.
        session_id = await charging_quietly(far, phone)
        async with SseStream(phone.client, f"/s/{session_id}/events") as events:
            first = await next_update(events)
            assert first.state == "CHARGING"
            for _ in range(3):
                sent = await reading(sim)
                update = await next_update(events, timeout=2.0)
                assert update.received - sent < 1.0
                assert update.version == (await record_of(far, session_id)).version
            await phone.stop(session_id)
            while update.state != "SETTLED":
                update = await next_update(events)
        record = await record_of(far, session_id)
        assert record.captured_minor is not None and record.captured_minor > 0
    finally:
        await phone.close()
        await stop_sim(sim, task)
        await far.stop()
        await near.stop()
