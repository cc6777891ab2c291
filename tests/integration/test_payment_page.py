"""The payment step under a driver's hands: a double click, a retry after a lost answer,
and Cancel, which frees the connector at once."""

from __future__ import annotations

import asyncio

import httpx

from support.driver import Phone, csrf_of, demo_site
from support.server import RunningServer
from support.sessions import charger, record_of, run_charger, session_id_of, wait_for_state


async def test_a_double_click_on_the_card_form_authorises_once_and_never_errs(
    server: RunningServer,
) -> None:
    await demo_site(server)
    sim = charger(server, meter_interval=0.2)
    task = await run_charger(server, sim)
    phone = Phone(server)
    try:
        session_id = session_id_of(await phone.start("CP-1", 1))
        page = await phone.client.get(f"/pay/{session_id}")
        form = {"_csrf_token": csrf_of(page.text), "card": "approve"}
        clicks = await asyncio.gather(
            *(phone.client.post(f"/pay/{session_id}/demo", data=form) for _ in range(3))
        )
        assert [c.status_code for c in clicks] == [303, 303, 303]
        assert {c.headers["location"] for c in clicks} == {f"/s/{session_id}"}
        # And once more, later, as a browser retrying after a lost answer would.
        again = await phone.client.post(f"/pay/{session_id}/demo", data=form)
        assert (again.status_code, again.headers["location"]) == (303, f"/s/{session_id}")
        record = await wait_for_state(server, session_id, "CHARGING")
        journals = await server.runtime.ledger.journals_of_session(session_id)
        assert [j.movement for j in journals] == ["authorised"]
        jobs = await server.runtime.jobs.listing()
        assert [j.kind for j in jobs if j.session_id == record.id] == ["session.start"]
    finally:
        await phone.close()
        await sim.close()
        task.cancel()


async def test_cancel_on_the_payment_page_frees_the_connector_at_once(
    server: RunningServer,
) -> None:
    await demo_site(server)
    sim = charger(server, meter_interval=0.2)
    task = await run_charger(server, sim)
    phone, next_driver = Phone(server), Phone(server)
    try:
        session_id = session_id_of(await phone.start("CP-1", 1))
        page = await phone.client.get(f"/pay/{session_id}")
        assert 'action="/pay/' + session_id + '/cancel"' in page.text
        canceled = await phone.client.post(
            f"/pay/{session_id}/cancel", data={"_csrf_token": csrf_of(page.text)}
        )
        assert (canceled.status_code, canceled.headers["location"]) == (303, "/c/CP-1/1")
        record = await record_of(server, session_id)
        assert (record.state, record.reason) == ("CANCELED", "driver_canceled")
        # Someone else can start on it straight away.
        started = await next_driver.start("CP-1", 1)
        assert started.headers["location"].startswith("/pay/")

        # The hold of the canceled session is released.
        async def released() -> bool:
            ref = record.payment_ref or ""
            return (await server.runtime.payments.get(ref)).status == "canceled"

        for _ in range(50):
            if await released():
                break
            await asyncio.sleep(0.1)
        assert await released()
    finally:
        await phone.close()
        await next_driver.close()
        await sim.close()
        task.cancel()


async def test_a_stranger_cannot_cancel_someone_elses_payment(server: RunningServer) -> None:
    await demo_site(server)
    sim = charger(server, meter_interval=0.2)
    task = await run_charger(server, sim)
    owner = Phone(server)
    try:
        session_id = session_id_of(await owner.start("CP-1", 1))
        async with httpx.AsyncClient(base_url=server.http_url) as stranger:
            page = await stranger.get("/c/CP-1/2")
            response = await stranger.post(
                f"/pay/{session_id}/cancel", data={"_csrf_token": csrf_of(page.text)}
            )
        assert response.status_code == 404
        assert (await record_of(server, session_id)).state == "CREATED"
    finally:
        await owner.close()
        await sim.close()
        task.cancel()
