"""The sweeper asks the database for exactly the sessions whose deadline has passed."""

from __future__ import annotations

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
