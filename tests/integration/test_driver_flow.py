"""The guest flow over real HTTP and OCPP: scan, price, pay (demo), charge, stop, receipt."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select

from conftest import PASSWORD, make_settings
from plugpay.store import tables as t
from plugpay.store.uow import unit_of_work_factory
from support.driver import Phone, csrf_of, demo_site, eventually, running_sim, stop_sim
from support.server import RunningServer, start_server
from support.sessions import session_id_of


async def session_state(server: RunningServer, session_id: str) -> str:
    record = await server.runtime.session_store.get(session_id)
    assert record is not None
    return record.state


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_guest_pays_charges_stops_and_is_billed_exactly(
    server: RunningServer, version: str
) -> None:
    charger_id, _ = await demo_site(server)
    sim, task = await running_sim(server, version, power_kw=50.0, meter_interval=0.2)
    phone = Phone(server)
    try:
        # The capability cookie comes with the connector page, before any start.
        first = await phone.client.get(f"/c/{charger_id}/1")
        cookie = first.headers.get("set-cookie", "")
        started = await phone.start(charger_id, 1)
        assert started.status_code == 303
        assert "plugpay_owner=" not in started.headers.get("set-cookie", "")
        session_id = started.headers["location"].rsplit("/", 1)[-1]
        assert (
            "plugpay_owner=" in cookie
            and "HttpOnly" in cookie
            and "SameSite=lax" in cookie.replace("Lax", "lax")
        )
        assert len(session_id) >= 22  # >= 128 bits, URL-safe

        paid = await phone.pay(session_id)
        assert paid.status_code == 303 and paid.headers["location"] == f"/s/{session_id}"

        async def charging_with_cost() -> bool:
            record = await server.runtime.session_store.get(session_id)
            return record is not None and record.state == "CHARGING" and record.cost_minor > 0

        await eventually(charging_with_cost)
        live = await phone.client.get(f"/s/{session_id}")
        assert live.status_code == 200 and 'sse-connect="/s/' in live.text

        stopped = await phone.stop(session_id)
        assert stopped.status_code == 303

        async def settled() -> bool:
            return await session_state(server, session_id) == "SETTLED"

        await eventually(settled)
        record = await server.runtime.session_store.get(session_id)
        assert record is not None and record.breakdown is not None
        # The captured amount is the engine's total for the stored readings, within the hold.
        final, energy, _ = await server.runtime.services.pricing.final_price(record)
        assert record.captured_minor == final.total_due().minor == record.cost_minor
        assert 0 < record.captured_minor <= record.hold_minor
        assert energy == record.energy_wh > 0
        # The ledger: the hold, its capture and the release of the rest, each balanced;
        # what the driver owes is exactly what was captured, the hold back to zero.
        journals = await server.runtime.ledger.journals_of_session(session_id)
        assert [(j.movement, j.amount) for j in journals] == [
            ("authorised", record.hold_minor),
            ("captured", record.captured_minor),
            ("released", record.hold_minor - record.captured_minor),
        ]
        balance = await server.runtime.ledger.trial_balance()
        assert sum(balance.values()) == 0
        assert balance[("EUR", "driver_receivable")] == record.captured_minor
        assert balance[("EUR", "driver_hold")] == 0
        payment = await server.runtime.payments.get(record.payment_ref or "")
        assert (
            payment.status == "succeeded" and payment.amount_received_minor == record.captured_minor
        )

        receipt = await phone.client.get(f"/r/{session_id}")
        assert receipt.status_code == 200
        assert "Receipt" in receipt.text and "ENERGY" in receipt.text.upper()
    finally:
        await phone.close()
        await stop_sim(sim, task)


async def test_someone_elses_session_is_not_found_everywhere(server: RunningServer) -> None:
    charger_id, _ = await demo_site(server)
    sim, task = await running_sim(server, "1.6", meter_interval=0.5)
    owner, stranger = Phone(server), Phone(server)
    try:
        started = await owner.start(charger_id, 1)
        session_id = started.headers["location"].rsplit("/", 1)[-1]
        await owner.pay(session_id)
        for path in (
            f"/s/{session_id}",
            f"/s/{session_id}/events",
            f"/r/{session_id}",
            f"/pay/{session_id}",
        ):
            response = await stranger.client.get(path)
            assert response.status_code == 404, path
        # A stranger cannot stop it either, even with a valid CSRF token of their own.
        page = await stranger.client.get(f"/c/{charger_id}/2")
        from support.driver import csrf_of

        response = await stranger.client.post(
            f"/s/{session_id}/stop", data={"_csrf_token": csrf_of(page.text)}
        )
        assert response.status_code == 404
        assert await session_state(server, session_id) in ("STARTING", "CHARGING")
    finally:
        await owner.close()
        await stranger.close()
        await stop_sim(sim, task)


async def test_forms_without_csrf_token_are_refused_and_change_nothing(
    server: RunningServer,
) -> None:
    charger_id, _ = await demo_site(server)
    phone = Phone(server)
    try:
        await phone.client.get(f"/c/{charger_id}/1")
        response = await phone.client.post(f"/c/{charger_id}/1/start", data={})
        assert response.status_code == 403
        async with server.runtime.db.connect() as conn:
            assert (await conn.execute(select(t.charging_sessions))).first() is None
    finally:
        await phone.close()


async def test_unknown_charger_or_connector_gets_a_friendly_404(server: RunningServer) -> None:
    await demo_site(server)
    phone = Phone(server, lang="de-DE,de;q=0.9")
    try:
        for path in ("/c/NOPE/1", "/c/CP-1/9"):
            response = await phone.client.get(path)
            assert response.status_code == 404
            assert "Ladesäule" in response.text and "<html" in response.text
    finally:
        await phone.close()


async def test_the_plug_is_named_in_the_drivers_language(server: RunningServer) -> None:
    _, tariff_id = await demo_site(server)
    services = server.runtime.services
    await services.chargers.add_charger(
        "CP-T2", PASSWORD, site="Test site", time_zone="Europe/Berlin", standard="IEC_62196_T2"
    )
    await services.tariffs.assign(tariff_id, charger_id="CP-T2")
    for lang, name in (("de-DE,de;q=0.9", "Typ 2"), ("en-GB", "Type 2")):
        phone = Phone(server, lang=lang)
        try:
            response = await phone.client.get("/c/CP-T2/1")
            assert response.status_code == 200
            assert f'<span id="plug">{name}</span>' in response.text
        finally:
            await phone.close()


async def test_the_start_page_lists_this_browsers_charges_and_no_one_elses(
    server: RunningServer,
) -> None:
    await demo_site(server)
    sim, task = await running_sim(server)
    mine, other = Phone(server), Phone(server)
    try:
        empty = await mine.client.get("/")
        assert empty.status_code == 200 and 'id="sessions"' not in empty.text
        first = session_id_of(await mine.start("CP-1", 1))
        theirs = session_id_of(await other.start("CP-1", 2))
        await mine.client.post(
            f"/pay/{first}/cancel",
            data={"_csrf_token": csrf_of((await mine.client.get(f"/pay/{first}")).text)},
        )
        second = session_id_of(await mine.start("CP-1", 1))

        page = (await mine.client.get("/")).text
        assert 'id="sessions"' in page
        # Newest first; a charge waiting for payment leads to its payment page.
        assert page.index(f'href="/pay/{second}"') < page.index(f'href="/s/{first}"')
        assert "Canceled" in page and "Waiting for payment" in page
        assert theirs not in page
        # Times in the charger's time zone, which they name.
        assert "CET" in page or "CEST" in page
        assert f'href="/pay/{theirs}"' in (await other.client.get("/")).text
        assert first not in (await other.client.get("/")).text
    finally:
        await mine.close()
        await other.close()
        await stop_sim(sim, task)


async def test_the_receipt_names_the_operator_and_prices_each_unit(database_url: str) -> None:
    settings = make_settings(
        database_url,
        operator_name="Ladestrom Musterstadt GmbH",
        operator_address="Hauptstraße 1; 12345 Musterstadt",
        operator_vat_id="DE123456789",
    )
    server = await start_server(settings)
    charger_id, _ = await demo_site(server)
    sim, task = await running_sim(server, power_kw=50.0, meter_interval=0.2)
    phone = Phone(server, lang="de-DE")
    try:
        session_id = session_id_of(await phone.start(charger_id, 1))
        await phone.pay(session_id)

        async def costing() -> bool:
            record = await server.runtime.session_store.get(session_id)
            return record is not None and record.cost_minor > 0

        await eventually(costing)
        await phone.stop(session_id)

        async def settled() -> bool:
            return await session_state(server, session_id) == "SETTLED"

        await eventually(settled)
        page = (await phone.client.get(f"/r/{session_id}")).text
        operator = page[page.index('<address class="operator"') : page.index("</address>")]
        assert "Ladestrom Musterstadt GmbH" in operator
        assert "Hauptstraße 1<br>12345 Musterstadt" in operator
        assert "USt-IdNr. DE123456789" in operator
        # The first receipt with a capture is number 1.
        assert '<span class="receipt-no" id="receipt-number">Nr. 000001</span>' in page
        # Times in the charger's zone, which they name; how long it took.
        start = page[page.index('id="receipt-start">') :].split("<", 1)[0]
        assert start.endswith(("MEZ", "MESZ", "CET", "CEST")), start
        assert 'id="receipt-duration">' in page
        # Each energy line says what a kWh cost, as the price page said it.
        assert re.search("kWh \u00d7 [\\d,]+\u00a0\u20ac / kWh", page), page
    finally:
        await phone.close()
        await stop_sim(sim, task)
        await server.stop()


async def test_receipt_numbers_have_no_gaps(server: RunningServer) -> None:
    """A number is taken in the transaction that records the capture: one that rolls
    back gives it back, so the numbers printed run without gaps."""
    uow = unit_of_work_factory(server.runtime.db)

    class Crash(Exception):
        pass

    async with uow() as first:
        assert await first.sessions.next_receipt_number() == 1

    async def taken_then_crashed() -> None:
        async with uow() as lost:
            assert await lost.sessions.next_receipt_number() == 2
            raise Crash

    with pytest.raises(Crash):
        await taken_then_crashed()
    async with uow() as again:
        assert await again.sessions.next_receipt_number() == 2

    async def take() -> int:
        async with uow() as each:
            return await each.sessions.next_receipt_number()

    taken = await asyncio.gather(*(take() for _ in range(20)))
    assert sorted(taken) == list(range(3, 23))  # at the same time: each once, none skipped
