"""Nothing is lost when the server restarts or the charger goes away: the virtual
charger queues its transaction messages, reconnects with backoff and replays them
in order, and the server applies them at the charger's own times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import PASSWORD
from plugpay.sim.charger import VirtualCharger
from plugpay.store import tables as t
from support.ocpp_client import eventually, rows
from support.server import RunningServer, start_server

VERSIONS = ["1.6", "2.0.1"]


@asynccontextmanager
async def running(sim: VirtualCharger) -> AsyncIterator[VirtualCharger]:
    task = asyncio.create_task(sim.run())
    try:
        yield sim
    finally:
        await sim.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def virtual(server: RunningServer, charger_id: str, version: str) -> VirtualCharger:
    return VirtualCharger(
        charger_id,
        server.ocpp_url,
        PASSWORD,
        version,
        power_kw=36.0,  # 2 Wh per 0.2 s reading
        meter_interval=0.2,
        initial_backoff=0.1,
        max_backoff=0.4,
    )


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def transactions(server: RunningServer) -> list[dict[str, Any]]:
    return await rows(server.runtime, t.transactions)


async def readings_of(server: RunningServer, pk: int) -> list[dict[str, Any]]:
    found = await rows(server.runtime, t.meter_readings, t.meter_readings.c.transaction_id == pk)
    return sorted(found, key=lambda r: r["at"])


async def until(check: Callable[[], Any], timeout: float = 10.0) -> None:
    await eventually(check, timeout)


def assert_priced_cleanly(readings: list[dict[str, Any]]) -> None:
    energies = [r["energy_wh"] for r in readings if r["energy_wh"] is not None]
    assert energies == sorted(energies)
    assert all(r["flag"] == "" for r in readings)


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_charger_replays_what_it_queued_while_the_server_was_down(
    server: RunningServer, charger_id: str, version: str
) -> None:
    sim = virtual(server, charger_id, version)
    async with running(sim):
        await asyncio.wait_for(sim.booted.wait(), 10)
        await sim.start_transaction(1, "TAG-1")

        async def started() -> bool:
            return len(await transactions(server)) == 1 and not sim.outbox

        await until(started)
        await asyncio.sleep(0.5)  # a few readings online
        await server.stop()
        down_at = datetime.now(UTC)

        # While the server is away: more readings, the end of this transaction,
        # and a whole second one on the other connector.
        await asyncio.sleep(0.6)
        await sim.stop_transaction(1)
        await sim.start_transaction(2, "TAG-2")
        await asyncio.sleep(0.6)
        await sim.stop_transaction(2)
        assert sim.queued >= 6 and not sim.connected.is_set()
        await asyncio.sleep(0.3)  # the sim keeps knocking (backoff)
        up_at = datetime.now(UTC)

        restarted = await start_server(server.settings, server.port)
        try:

            async def replayed() -> bool:
                done = [tx for tx in await transactions(restarted) if tx["status"] == "ended"]
                return len(done) == 2 and not sim.outbox

            await until(replayed)
            assert sim.connection_count >= 2 and sim.dropped == []
            first, second = await transactions(restarted)
            finished = {c: sim.connectors[c].finished[0] for c in (1, 2)}
            for tx, connector in ((first, 1), (second, 2)):
                assert tx["connector_id"] == connector
                assert tx["meter_stop_wh"] == sim.connectors[connector].meter_wh
                assert str(finished[connector].transaction_id) == tx["ocpp_transaction_id"]
                assert aware(tx["started_at"]) == finished[connector].started_at.replace(
                    microsecond=finished[connector].started_at.microsecond // 1000 * 1000
                )
                readings = await readings_of(restarted, tx["id"])
                assert_priced_cleanly(readings)
                assert readings[-1]["energy_wh"] == tx["meter_stop_wh"]
                assert tx["last_energy_wh"] == tx["meter_stop_wh"]
            # The first transaction ended while the server was down: at the
            # charger's time, not when the message arrived.
            assert down_at < aware(first["stopped_at"]) < up_at
            assert down_at < aware(second["started_at"]) < aware(second["stopped_at"]) < up_at
            offline_readings = [
                r
                for r in await readings_of(restarted, first["id"])
                if down_at < aware(r["at"]) < up_at
            ]
            assert len(offline_readings) >= 2
            if version == "2.0.1":
                assert first["offline"] and second["offline"]
        finally:
            await sim.close()
            await restarted.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_server_restart_mid_transaction_loses_nothing(
    server: RunningServer, charger_id: str, version: str
) -> None:
    await server.runtime.services.chargers.add_id_tag("TAG-1")
    sim = virtual(server, charger_id, version)
    async with running(sim):
        await asyncio.wait_for(sim.booted.wait(), 10)
        assert await server.runtime.services.commands.remote_start(charger_id, 1, "TAG-1")

        async def charging_for_a_while() -> bool:
            txs = await transactions(server)
            return len(txs) == 1 and len(await readings_of(server, txs[0]["id"])) >= 3

        await until(charging_for_a_while)
        [before] = await transactions(server)
        await server.stop()
        restart_at = datetime.now(UTC)
        restarted = await start_server(server.settings, server.port)
        try:
            await asyncio.wait_for(sim.booted.wait(), 10)

            async def metering_again() -> bool:
                readings = await readings_of(restarted, before["id"])
                return sum(aware(r["at"]) > restart_at for r in readings) >= 3

            await until(metering_again)
            commands = restarted.runtime.services.commands
            assert await commands.remote_stop(charger_id, before["ocpp_transaction_id"])

            async def ended() -> bool:
                [tx] = await transactions(restarted)
                return bool(tx["status"] == "ended") and not sim.outbox

            await until(ended)
            [after] = await transactions(restarted)
            assert after["id"] == before["id"] and after["stop_reason"] == "Remote"
            assert after["meter_stop_wh"] == sim.connectors[1].meter_wh
            readings = await readings_of(restarted, after["id"])
            assert_priced_cleanly(readings)
            assert any(aware(r["at"]) < restart_at for r in readings[1:])
            assert readings[-1]["energy_wh"] == after["meter_stop_wh"]
        finally:
            await sim.close()
            await restarted.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_charger_that_vanishes_mid_session_is_reconciled_when_it_returns(
    server: RunningServer, charger_id: str, version: str
) -> None:
    sim = virtual(server, charger_id, version)
    async with running(sim):
        await asyncio.wait_for(sim.booted.wait(), 10)
        await sim.start_transaction(1, "TAG-1")

        async def started() -> bool:
            return len(await transactions(server)) == 1 and not sim.outbox

        await until(started)
        away = asyncio.create_task(sim.vanish(1.5))

        async def marked_disconnected() -> bool:
            view = await server.runtime.charger_store.get(charger_id)
            return view is not None and not view.connected

        await until(marked_disconnected, 3)
        await away
        assert server.runtime.registry.get(charger_id) is None
        await asyncio.sleep(0.5)
        await sim.stop_transaction(1)  # still away: the stop is queued too
        assert not sim.connected.is_set() and sim.queued >= 3

        async def back_and_reconciled() -> bool:
            view = await server.runtime.charger_store.get(charger_id)
            [tx] = await transactions(server)
            return bool(view and view.connected and tx["status"] == "ended") and not sim.outbox

        await until(back_and_reconciled)
        [tx] = await transactions(server)
        assert tx["meter_stop_wh"] == sim.connectors[1].meter_wh
        assert_priced_cleanly(await readings_of(server, tx["id"]))
