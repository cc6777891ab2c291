"""When the car stops drawing power and an idle fee applies, the driver is told once by
Web Push (where notifications were allowed), with the fee as the price page showed it;
a tariff without an idle fee, or a car that keeps charging, sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conftest import PASSWORD, make_settings
from plugpay.app import create_app
from plugpay.notify.webpush import WebPushSender, generate_vapid_private_key
from plugpay.sim.charger import VirtualCharger
from support.driver import Phone, stop_sim
from support.push_receiver import FakeBrowser, PushReceiver
from support.server import RunningServer, start_server
from support.sessions import charging, meta_csrf, run_charger

IDLE_ALL_DAY = {
    "country_code": "DE", "party_id": "PLG", "id": "IDLE-ALL-DAY", "currency": "EUR",
    "type": "AD_HOC_PAYMENT", "last_updated": "2026-11-01T00:00:00Z",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 19.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 19.0, "step_size": 60}]},
    ],
}  # fmt: skip
NO_IDLE = {**IDLE_ALL_DAY, "id": "NO-IDLE", "elements": IDLE_ALL_DAY["elements"][:1]}


@pytest.fixture
def sender() -> WebPushSender:
    return WebPushSender(generate_vapid_private_key(), "mailto:ops@example.com", allow_private=True)


@pytest.fixture
async def push_server(database_url: str, sender: WebPushSender) -> AsyncIterator[RunningServer]:
    settings = make_settings(database_url, push_allow_private=True)
    server = await start_server(settings, app=create_app(settings, push=sender))
    services = server.runtime.services
    for tariff in (IDLE_ALL_DAY, NO_IDLE):
        await services.tariffs.import_tariff(tariff)
    await services.chargers.add_charger("CP-1", PASSWORD, connectors=2, site="Test site")
    await services.tariffs.assign("IDLE-ALL-DAY", charger_id="CP-1", connector_id=1)
    await services.tariffs.assign("NO-IDLE", charger_id="CP-1", connector_id=2)
    yield server
    await server.stop()


async def subscribed(phone: Phone, session_id: str, receiver: PushReceiver, key: str) -> None:
    page = await phone.client.get(f"/s/{session_id}")
    sub = receiver.subscribe(FakeBrowser(application_server_key=key))
    response = await phone.client.post(
        f"/s/{session_id}/push",
        json={"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}},
        headers={"x-csrf-token": meta_csrf(page.text)},
    )
    assert response.status_code == 204


async def test_the_driver_is_told_once_when_the_idle_fee_begins(
    push_server: RunningServer, sender: WebPushSender
) -> None:
    sim = VirtualCharger(
        "CP-1", push_server.ocpp_url, PASSWORD, "1.6", power_kw=22.0, meter_interval=0.2,
        connectors=2, max_backoff=1.0,
    )  # fmt: skip
    task = await run_charger(push_server, sim)
    phone = Phone(push_server)
    try:
        async with PushReceiver() as receiver:
            with_fee = await charging(push_server, phone, "CP-1", 1)
            without = await charging(push_server, phone, "CP-1", 2)
            for session_id in (with_fee, without):
                await subscribed(phone, session_id, receiver, sender.public_key)
            await asyncio.sleep(1.0)
            assert receiver.messages == []  # both cars still draw power

            for connector in sim.connectors.values():
                connector.power_w = 0  # both cars are full
            [message] = await receiver.wait_for(1)
            assert message.errors == [] and message.status == 201
            assert message.payload["title"] == "Your car has stopped charging"
            assert "€0.119 / min" in message.payload["body"]
            assert message.payload["url"].endswith(f"/s/{with_fee}")
            await asyncio.sleep(1.5)  # many more readings at 0 W: no second message
            assert len(receiver.messages) == 1
    finally:
        await phone.close()
        await stop_sim(sim, task)
