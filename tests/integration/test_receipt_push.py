"""The receipt as a Web Push notification: the browser subscribes from the live page,
the session settles, exactly one encrypted notification with the total arrives at the
push service (played by the test), and a subscription the push service calls gone is
forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from conftest import make_settings
from plugpay.app import create_app
from plugpay.notify.webpush import WebPushSender, generate_vapid_private_key
from plugpay.services.ports import PushSubscription
from plugpay.sim.charger import VirtualCharger
from support.driver import Phone, demo_site, eventually, stop_sim
from support.faults import UnreachableProvider
from support.push_receiver import FakeBrowser, PushReceiver
from support.server import RunningServer, start_server
from support.sessions import (
    charger,
    charging,
    first_attempt_failed,
    make_job_due,
    meta_csrf,
    record_of,
    repeat_job,
    run_charger,
    wait_for_state,
)

PUBLIC_URL = "http://127.0.0.1:8000"


@pytest.fixture
def sender() -> WebPushSender:
    return WebPushSender(generate_vapid_private_key(), "mailto:ops@example.com", allow_private=True)


@pytest.fixture
async def push_server(database_url: str, sender: WebPushSender) -> AsyncIterator[RunningServer]:
    settings = make_settings(database_url, public_url=PUBLIC_URL, push_allow_private=True)
    server = await start_server(settings, app=create_app(settings, push=sender))
    yield server
    await server.stop()


@pytest.fixture
async def sim(push_server: RunningServer) -> AsyncIterator[VirtualCharger]:
    await demo_site(push_server)
    sim = charger(push_server, meter_interval=0.2, power_kw=50.0)
    task = await run_charger(push_server, sim)
    yield sim
    await stop_sim(sim, task)


@pytest.fixture
async def phone(push_server: RunningServer) -> AsyncIterator[Phone]:
    phone = Phone(push_server)
    yield phone
    await phone.close()


@pytest.fixture
async def receiver() -> AsyncIterator[PushReceiver]:
    async with PushReceiver() as r:
        yield r


async def allow_notifications(phone: Phone, session_id: str, subscription: PushSubscription) -> int:
    """What the page's "Notify me" button does once the browser has subscribed."""
    page = await phone.client.get(f"/s/{session_id}")
    response = await phone.client.post(
        f"/s/{session_id}/push",
        json={
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        },
        headers={"x-csrf-token": meta_csrf(page.text)},
    )
    return response.status_code


def amount(minor: int) -> str:
    return str(Decimal(minor).scaleb(-2))


async def test_the_receipt_notification_arrives_once_with_the_total(
    push_server: RunningServer,
    sim: VirtualCharger,
    phone: Phone,
    receiver: PushReceiver,
    sender: WebPushSender,
) -> None:
    session_id = await charging(push_server, phone)
    page = await phone.client.get(f"/s/{session_id}")
    assert f'data-vapid-key="{sender.public_key}"' in page.text
    browser = FakeBrowser(application_server_key=sender.public_key)
    assert await allow_notifications(phone, session_id, receiver.subscribe(browser)) == 204

    await phone.stop(session_id)
    record = await wait_for_state(push_server, session_id, "SETTLED")
    [message] = await receiver.wait_for(1)
    assert message.errors == [] and message.status == 201
    assert message.token is not None and message.token.signature_valid
    assert message.token.claims["sub"] == "mailto:ops@example.com"
    assert message.token.claims["aud"] == receiver.origin
    assert record.captured_minor is not None and record.captured_minor > 0
    assert amount(record.captured_minor) in message.payload["body"]
    assert message.payload["title"] == "Charging complete"
    assert message.payload["url"] == f"{PUBLIC_URL}/r/{session_id}"

    async def marked() -> bool:
        return (await record_of(push_server, session_id)).receipt_pushed_at is not None

    await eventually(marked)

    # Whatever else goes over the settled session again, the driver is told once.
    assert record.transaction_pk is not None
    await repeat_job(push_server, f"tx_ended:{record.transaction_pk}")
    await repeat_job(push_server, f"capture:{session_id}")
    await asyncio.sleep(0.5)
    assert len(receiver.messages) == 1


async def test_a_receipt_whose_capture_was_retried_is_pushed_once(
    push_server: RunningServer,
    sim: VirtualCharger,
    phone: Phone,
    receiver: PushReceiver,
    sender: WebPushSender,
) -> None:
    session_id = await charging(push_server, phone)
    browser = FakeBrowser(application_server_key=sender.public_key)
    assert await allow_notifications(phone, session_id, receiver.subscribe(browser)) == 204
    push_server.runtime.use_payments(UnreachableProvider(push_server.runtime.payments, failures=1))

    await phone.stop(session_id)
    await wait_for_state(push_server, session_id, "STOPPED")
    await first_attempt_failed(push_server, session_id)
    assert receiver.messages == []  # nothing is paid yet, so nothing is announced
    await make_job_due(push_server, session_id)
    record = await wait_for_state(push_server, session_id, "SETTLED")
    [message] = await receiver.wait_for(1)
    assert amount(record.captured_minor or 0) in message.payload["body"]
    await asyncio.sleep(0.5)
    assert len(receiver.messages) == 1


async def test_a_subscription_the_push_service_calls_gone_is_removed(
    push_server: RunningServer,
    sim: VirtualCharger,
    phone: Phone,
    receiver: PushReceiver,
    sender: WebPushSender,
) -> None:
    session_id = await charging(push_server, phone)
    bad = PushSubscription("javascript:alert(1)", "BPk", "x")
    assert await allow_notifications(phone, session_id, bad) == 400
    async with PushReceiver(status=410) as expired:
        old = FakeBrowser(application_server_key=sender.public_key)
        new = FakeBrowser(application_server_key=sender.public_key)
        gone = expired.subscribe(old)
        kept = receiver.subscribe(new)
        assert await allow_notifications(phone, session_id, gone) == 204
        assert await allow_notifications(phone, session_id, kept) == 204
        store = push_server.runtime.session_store
        assert len(await store.push_subscriptions(session_id)) == 2

        await phone.stop(session_id)
        await wait_for_state(push_server, session_id, "SETTLED")
        await expired.wait_for(1)
        await receiver.wait_for(1)

        async def forgotten() -> bool:
            return await store.push_subscriptions(session_id) == [kept]

        for _ in range(100):
            if await forgotten():
                break
            await asyncio.sleep(0.05)
        assert await store.push_subscriptions(session_id) == [kept]
