"""The session timers ask the database for exactly the sessions that are due."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert

from plugpay.services.sessions import utcnow
from plugpay.store import tables as t
from support.driver import demo_site
from support.server import RunningServer


async def transaction(server: RunningServer, connector_id: int) -> int:
    stamp = utcnow()
    async with server.runtime.db.begin() as conn:
        result = await conn.execute(
            insert(t.transactions).values(
                charger_id="CP-1",
                connector_id=connector_id,
                status="active",
                created_at=stamp,
                updated_at=stamp,
            )
        )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])


async def test_timers_pick_exactly_the_due_sessions(server: RunningServer) -> None:
    await demo_site(server, connectors=8)
    store = server.runtime.session_store
    now = utcnow()
    minute = timedelta(minutes=1)
    tariff_pk = (await server.runtime.services.sessions.connector("CP-1", 1)).tariff_pk

    async def session(name: str, connector: int, state: str, **values: object) -> None:
        await store.create(
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
            }
        )
        await store.update(name, state=state, **values)

    unpaid_before = now - 10 * minute
    silent_before = now - 5 * minute
    # CREATED: due once created before the cut-off.
    await session("created-old", 1, "CREATED", created_at=now - 11 * minute)
    await session("created-new", 2, "CREATED", created_at=now - 9 * minute)
    # STARTING: due once past its deadline; never without one.
    await session("starting-late", 3, "STARTING", start_deadline=now - minute)
    await session("starting-ok", 4, "STARTING", start_deadline=now + minute)
    # CHARGING: due when the last sign of life (reading, else start, else creation)
    # is older than the silence cut-off, and only with a transaction.
    await session(
        "charging-silent",
        5,
        "CHARGING",
        transaction_pk=await transaction(server, 5),
        started_at=now - 20 * minute,
        last_reading_at=now - 6 * minute,
    )
    await session(
        "charging-live",
        6,
        "CHARGING",
        transaction_pk=await transaction(server, 6),
        started_at=now - 20 * minute,
        last_reading_at=now - minute,
    )
    await session(
        "stopping-no-reading",
        7,
        "STOPPING",
        transaction_pk=await transaction(server, 7),
        started_at=now - 6 * minute,
    )
    await session("charging-no-transaction", 8, "CHARGING", started_at=now - 60 * minute)

    due = await store.timers_due(now, unpaid_before=unpaid_before, silent_before=silent_before)
    assert sorted(r.id for r in due) == [
        "charging-silent",
        "created-old",
        "starting-late",
        "stopping-no-reading",
    ]
