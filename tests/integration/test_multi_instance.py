"""Several server instances: charger commands travel through Redis to the instance
that holds the charger's WebSocket."""

from __future__ import annotations

import os

import pytest

from conftest import make_settings
from plugpay.domain.errors import ChargerOffline
from support.driver import PASSWORD, eventually
from support.server import start_server

REDIS_URL = os.environ.get("PLUGPAY_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="PLUGPAY_TEST_REDIS_URL is not set")


async def test_command_from_one_instance_reaches_a_charger_on_another(database_url: str) -> None:
    import asyncio

    from plugpay.sim.charger import VirtualCharger

    a = await start_server(make_settings(database_url, redis_url=REDIS_URL))
    b = await start_server(make_settings(database_url, redis_url=REDIS_URL))
    sim = None
    run = None
    try:
        await a.runtime.services.chargers.add_charger("CP-R", PASSWORD, connectors=1)
        sim = VirtualCharger("CP-R", b.ocpp_url, PASSWORD, "2.0.1", meter_interval=0.2)
        run = asyncio.create_task(sim.run())
        await asyncio.wait_for(sim.booted.wait(), 10)
        assert a.runtime.registry.get("CP-R") is None and b.runtime.registry.get("CP-R") is not None

        commands = a.runtime.services.commands
        assert await commands.remote_start("CP-R", 1, "TAG-R") is True

        async def started() -> bool:
            return sim.connectors[1].transaction is not None

        await eventually(started)
        answer = await commands.send(
            "CP-R",
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "SampledDataCtrlr"},
                        "variable": {"name": "MeterValueSampleInterval"},
                    }
                ]
            },
        )
        assert answer["getVariableResult"][0]["attributeStatus"] in ("Accepted", "UnknownVariable")

        with pytest.raises(ChargerOffline):
            await commands.send("NOBODY", "Heartbeat", {})
    finally:
        if sim is not None:
            await sim.close()
        if run is not None:
            run.cancel()
        await a.stop()
        await b.stop()


async def test_chargers_of_an_instance_gone_without_a_goodbye_are_marked_offline(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance that crashes leaves its chargers flagged connected; its lease in
    Redis runs out, and a live instance clears those flags (and no others)."""
    import asyncio
    from datetime import UTC, datetime

    from plugpay import runtime as runtime_module
    from plugpay.sim.charger import VirtualCharger

    monkeypatch.setattr(runtime_module, "INSTANCE_SWEEP_SECONDS", 1)
    a = await start_server(make_settings(database_url, redis_url=REDIS_URL))
    sim = None
    try:
        chargers = a.runtime.services.chargers
        await chargers.add_charger("CP-LIVE", PASSWORD, connectors=1)
        await chargers.add_charger("CP-ORPHAN", PASSWORD, connectors=1)
        sim = VirtualCharger("CP-LIVE", a.ocpp_url, PASSWORD, "1.6")
        run = asyncio.create_task(sim.run())
        await asyncio.wait_for(sim.booted.wait(), 10)
        # What a crashed instance leaves behind: a flag, and no lease.
        await a.runtime.charger_store.set_connected("CP-ORPHAN", "1.6", datetime.now(UTC), "0" * 32)

        async def orphan_released() -> bool:
            view = await chargers.store.get("CP-ORPHAN")
            return view is not None and not view.connected

        await eventually(orphan_released)
        live = await chargers.store.get("CP-LIVE")
        assert live is not None and live.connected
        run.cancel()
    finally:
        if sim is not None:
            await sim.close()
        await a.stop()
