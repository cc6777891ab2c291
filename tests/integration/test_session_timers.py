"""The sweeper asks the database for exactly the sessions whose deadline has passed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from plugpay.services.session_moves import utcnow
from support.driver import demo_site
from support.server import RunningServer


async def test_the_sweeper_picks_exactly_the_sessions_past_their_deadline(
    server: RunningServer,
) -> None:
    await demo_site(server, connectors=6)
    runtime = server.runtime
    now = utcnow()
    minute = timedelta(minutes=1)
    tariff_pk = (await runtime.services.reservations.connector("CP-1", 1)).tariff_pk

    async def session(name: str, connector: int, deadline: object) -> None:
        async with runtime.services.reservations.uow() as uow:
            await uow.sessions.create(
                {
                    "id": name,
                    "charger_id": "CP-1",
                    "connector_id": connector,
                    "owner_hash": "x",
                    "lang": "en",
                    "tariff_pk": tariff_pk,
                    "time_zone": "UTC",
                    "currency": "EUR",
                    "hold_minor": 5000,
                    "id_tag": f"tag-{connector}",
                    "payment_provider": "demo",
                    "deadline_at": deadline,
                }
            )

    await session("late", 1, now - minute)
    await session("just-due", 2, now)
    await session("later", 3, now + minute)
    await session("no-deadline", 4, None)
    await session("oldest", 5, now - 60 * minute)
    async with runtime.services.reservations.uow() as uow:
        due = await uow.sessions.due(now, 10)
        assert due == ["oldest", "late", "just-due"]
        assert await uow.sessions.due(now, 2) == ["oldest", "late"]


async def test_a_reading_moves_the_silent_deadline_of_a_charging_session_only(
    server: RunningServer,
) -> None:
    """While charging, each reading puts the silent-charger deadline off; once the
    session is stopping, readings leave its stop's deadline alone (the live path's
    view of the session may be a reading behind)."""
    from support.driver import Phone
    from support.sessions import charger, charging, force, record_of, run_charger

    await demo_site(server)
    sim = charger(server, meter_interval=0.2, power_kw=22.0)
    task = await run_charger(server, sim)
    phone = Phone(server)
    try:
        session_id = await charging(server, phone)
        record = await record_of(server, session_id)
        assert record.deadline_at is not None
        assert record.deadline_at > utcnow() + timedelta(minutes=10)  # silent: 15 min away
        soon = utcnow() + timedelta(seconds=30)
        await force(server, session_id, state="STOPPING", deadline_at=soon)
        seen = record.last_reading_at
        for _ in range(50):  # a few more readings
            now_record = await record_of(server, session_id)
            if now_record.last_reading_at != seen and now_record.energy_wh > record.energy_wh:
                break
            await asyncio.sleep(0.1)
        later = await record_of(server, session_id)
        assert later.last_reading_at != seen, "no reading arrived"
        assert later.deadline_at == soon
    finally:
        await phone.close()
        await sim.close()
        task.cancel()
