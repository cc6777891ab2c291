"""Both OCPP versions end to end: the virtual charger against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from conftest import PASSWORD
from plugpay.sim.charger import VirtualCharger
from plugpay.store import tables as t
from support.server import RunningServer


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def rows(server: RunningServer, table, *where):  # type: ignore[no-untyped-def]
    await server.runtime.writer.commit()
    async with server.runtime.db.connect() as conn:
        return (await conn.execute(select(table).where(*where))).mappings().all()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_charger_boots_charges_and_stops_remotely(
    server: RunningServer, charger_id: str, version: str
) -> None:
    sim = VirtualCharger(
        charger_id, server.ocpp_url, PASSWORD, version, power_kw=36.0, meter_interval=0.2
    )
    run = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.booted.wait(), 10)
        assert sim.boot_status == "Accepted"

        async def connectors_available() -> bool:
            view = await server.runtime.charger_store.get(charger_id)
            return view is not None and [c.status for c in view.connectors] == [
                "Available",
                "Available",
            ]

        await eventually(connectors_available)
        view = await server.runtime.charger_store.get(charger_id)
        assert view is not None and view.connected and view.ocpp_version == version
        assert view.vendor == "plugpay" and view.firmware_version == "1.0.0"

        await server.runtime.services.chargers.add_id_tag("TAG-1")
        commands = server.runtime.services.commands
        assert await commands.remote_start(charger_id, 1, "TAG-1") is True

        async def has_readings() -> bool:
            return (
                len(
                    await rows(
                        server, t.meter_readings, t.meter_readings.c.charger_id == charger_id
                    )
                )
                >= 4
            )

        await eventually(has_readings)
        [tx] = await rows(server, t.transactions, t.transactions.c.charger_id == charger_id)
        assert tx["status"] == "active" and tx["connector_id"] == 1 and tx["meter_start_wh"] == 0

        assert await commands.remote_stop(charger_id, tx["ocpp_transaction_id"]) is True

        async def ended() -> bool:
            [row] = await rows(server, t.transactions, t.transactions.c.id == tx["id"])
            return bool(row["status"] == "ended")

        await eventually(ended)
        [done] = await rows(server, t.transactions, t.transactions.c.id == tx["id"])
        finished = sim.connectors[1].finished[0]
        assert done["stop_reason"] == "Remote"
        assert done["meter_stop_wh"] == sim.connectors[1].meter_wh > 0
        assert str(finished.transaction_id) == done["ocpp_transaction_id"]
        readings = await rows(
            server, t.meter_readings, t.meter_readings.c.transaction_id == tx["id"]
        )
        energies = [r["energy_wh"] for r in sorted(readings, key=lambda r: r["at"])]
        assert energies == sorted(energies) and all(r["flag"] == "" for r in readings)
        log = await server.runtime.message_log.recent(charger_id, 500)
        actions = {m.action for m in log if m.direction == "in" and m.action}
        assert {"BootNotification", "StatusNotification"} <= actions
    finally:
        await sim.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
