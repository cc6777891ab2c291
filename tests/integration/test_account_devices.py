"""A signed-in driver's devices: allowing notifications once, on any charge's page,
makes every later receipt of the account reach that device; a device the push
service calls gone is pruned; devices are their account's only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from plugpay.notify.webpush import WebPushSender, generate_vapid_private_key
from plugpay.store import tables as t
from plugpay.store.uow import unit_of_work_factory
from support.accounts import AccountSite, account_site
from support.driver import Phone, csrf_of, demo_site, eventually, running_sim, stop_sim
from support.push_receiver import FakeBrowser, PushReceiver
from support.sessions import charging, meta_csrf, wait_for_state

ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture
def sender() -> WebPushSender:
    return WebPushSender(generate_vapid_private_key(), "mailto:ops@example.com", allow_private=True)


@pytest.fixture
async def site(database_url: str, sender: WebPushSender) -> AsyncIterator[AccountSite]:
    async with account_site(database_url, push=sender, push_allow_private=True) as running:
        await demo_site(running.server)
        yield running


async def devices(site: AccountSite) -> int:
    async with site.server.runtime.db.connect() as conn:
        count = select(func.count()).select_from(t.account_devices)
        return int((await conn.execute(count)).scalar_one())


async def test_every_receipt_of_the_account_reaches_its_device(
    site: AccountSite, sender: WebPushSender
) -> None:
    sim, task = await running_sim(site.server, meter_interval=0.2, power_kw=50.0)
    alice = await site.signed_in("alice")
    alice.headers["User-Agent"] = ANDROID_CHROME
    phone = Phone(site.server)
    await phone.client.aclose()
    phone.client = alice
    try:
        async with PushReceiver() as receiver:
            first = await charging(site.server, phone)
            page = await alice.get(f"/s/{first}")
            subscription = receiver.subscribe(FakeBrowser(application_server_key=sender.public_key))
            allowed = await alice.post(
                f"/s/{first}/push",
                json={
                    "endpoint": subscription.endpoint,
                    "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
                },
                headers={"x-csrf-token": meta_csrf(page.text)},
            )
            assert allowed.status_code == 204
            me = await alice.get("/me")
            assert "Chrome on Android" in me.text and await devices(site) == 1

            await phone.stop(first)
            await wait_for_state(site.server, first, "SETTLED")
            await receiver.wait_for(1)

            # A later charge, on whose page nothing was allowed: its receipt comes too,
            # once (the device is not also a subscription of this session).
            second = await charging(site.server, phone)
            await phone.stop(second)
            await wait_for_state(site.server, second, "SETTLED")
            messages = await receiver.wait_for(2)
            assert [m.payload["url"].rsplit("/", 1)[-1] for m in messages] == [first, second]

            # The push service calls the device gone: it is pruned from the account.
            receiver.status = 410
            third = await charging(site.server, phone)
            await phone.stop(third)
            await wait_for_state(site.server, third, "SETTLED")
            await receiver.wait_for(3)

            async def pruned() -> bool:
                return await devices(site) == 0

            await eventually(pruned)
            assert "Allow notifications on the page of a charge" in (await alice.get("/me")).text
    finally:
        await alice.aclose()
        await stop_sim(sim, task)


async def test_a_device_is_its_accounts_only(site: AccountSite) -> None:
    alice, bob = await site.signed_in("alice"), await site.signed_in("bob")
    try:
        me = await site.account_id("alice")
        async with unit_of_work_factory(site.server.runtime.db)() as uow:
            await uow.accounts.add_device(
                me, "https://push.example.org/a", "k", "a", None, datetime.now(UTC)
            )
        page = await alice.get("/me")
        device = page.text.split('action="/me/devices/')[1].split("/")[0]
        token = csrf_of((await bob.get("/me")).text)
        refused = await bob.post(f"/me/devices/{device}/remove", data={"_csrf_token": token})
        assert refused.status_code == 404 and await devices(site) == 1
        removed = await alice.post(
            f"/me/devices/{device}/remove", data={"_csrf_token": csrf_of(page.text)}
        )
        assert removed.status_code == 303 and await devices(site) == 0
    finally:
        await alice.aclose()
        await bob.aclose()
