"""Charging sessions when things go wrong: a charger that never starts, refuses or is
offline; a charger cut off mid-charge or silent for good; a payment provider that
cannot be reached at capture; a server restart; two phones racing; a hold running out.

Every test runs the real server over HTTP and OCPP with the virtual charger and the
demo payment provider, on SQLite (and PostgreSQL when configured).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from conftest import make_settings
from plugpay.services.ports import ConnectorTaken
from plugpay.services.session_moves import utcnow
from plugpay.services.snapshots import snapshot
from plugpay.sim.charger import VirtualCharger
from plugpay.sim.state import iso
from plugpay.store import tables as t
from support.driver import PASSWORD, Phone, csrf_of, demo_site, eventually, stop_sim
from support.faults import (
    HesitantCharger,
    StubbornCharger,
    UnreachableProvider,
    cut_off,
    reconnect,
)
from support.server import RunningServer, start_server
from support.sessions import (
    charger,
    charging,
    first_attempt_failed,
    ledger,
    make_job_due,
    payment_intents,
    payment_job,
    price_up_to,
    record_of,
    repeat_job,
    run_charger,
    sent_to_charger,
    session_id_of,
    wait_for_state,
)

STOP_ACTION = {"1.6": "RemoteStopTransaction", "2.0.1": "RequestStopTransaction"}
START_ACTION = {"1.6": "RemoteStartTransaction", "2.0.1": "RequestStartTransaction"}
StartServer = Callable[..., Awaitable[RunningServer]]
Chargers = Callable[[RunningServer, VirtualCharger], Awaitable[None]]
Phones = Callable[[RunningServer], Phone]


@pytest.fixture
async def servers(database_url: str) -> AsyncIterator[StartServer]:
    """Start servers on the test's database (short start timeout); all stopped at the end."""
    started: list[RunningServer] = []

    async def start(port: int | None = None, **overrides: Any) -> RunningServer:
        settings = make_settings(database_url, **{"start_timeout": 2.0, **overrides})
        server = await start_server(settings, port)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def chargers() -> AsyncIterator[Chargers]:
    """Run virtual chargers against a server; all closed at the end (before the servers)."""
    running: list[tuple[VirtualCharger, asyncio.Task[None]]] = []

    async def run(server: RunningServer, sim: VirtualCharger) -> None:
        running.append((sim, await run_charger(server, sim)))

    yield run
    for sim, task in running:
        await stop_sim(sim, task)


@pytest.fixture
async def phone_factory() -> AsyncIterator[Phones]:
    phones: list[Phone] = []

    def make(server: RunningServer) -> Phone:
        phones.append(Phone(server))
        return phones[-1]

    yield make
    for phone in phones:
        await phone.close()


async def payment_status(server: RunningServer, session_id: str) -> str:
    record = await record_of(server, session_id)
    assert record.payment_ref is not None
    return (await server.runtime.payments.get(record.payment_ref)).status


async def released(server: RunningServer, session_id: str) -> None:
    async def canceled() -> bool:
        return await payment_status(server, session_id) == "canceled"

    await eventually(canceled, timeout=5)


async def provider_requests(server: RunningServer, payment_ref: str) -> list[str]:
    """The idempotency keys the demo provider applied to this payment."""
    d = t.demo_payments
    async with server.runtime.db.connect() as conn:
        data = await conn.scalar(select(d.c.data).where(d.c.ref == payment_ref))
    return sorted(data["replies"])


async def reading_count(server: RunningServer, session_id: str) -> int:
    record = await record_of(server, session_id)
    assert record.transaction_pk is not None
    return len(await server.runtime.session_store.transaction_readings(record.transaction_pk))


# -- the start ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_that_never_starts_releases_the_hold_and_a_late_start_is_stopped(
    servers: StartServer, chargers: Chargers, phone_factory: Phones, version: str
) -> None:
    server = await servers(start_timeout=1.0, ocpp_call_timeout=10.0)
    await demo_site(server)
    sim = HesitantCharger("CP-1", server.ocpp_url, PASSWORD, version, meter_interval=0.2)
    await chargers(server, sim)
    phone = phone_factory(server)

    session_id = session_id_of(await phone.start("CP-1", 1))
    await phone.pay(session_id)

    # The start command runs in the background after payment: wait for it to land.
    async def held() -> bool:
        return bool(sim.held)

    await eventually(held, timeout=5)

    record = await wait_for_state(server, session_id, "START_FAILED", timeout=5)
    assert record.reason == "charger_did_not_start"
    await released(server, session_id)
    page = await phone.client.get(f"/s/{session_id}")
    assert "did not start in time" in page.text and "hold has been released" in page.text
    available = await phone.client.get("/c/CP-1/1/status")
    assert "available" in available.text.lower()

    # The car finally starts charging anyway: nobody pays for it, so it is stopped at once.
    stops_before = len(await sent_to_charger(server, "CP-1", STOP_ACTION[version]))
    late = await sim.start_held()
    began = time.monotonic()

    async def stopped_at_the_charger() -> bool:
        return late in sim.connectors[1].finished and sim.queued == 0

    await eventually(stopped_at_the_charger, timeout=4)
    assert time.monotonic() - began < 4
    assert len(await sent_to_charger(server, "CP-1", STOP_ACTION[version])) > stops_before
    record = await record_of(server, session_id)
    assert record.state == "START_FAILED" and record.transaction_pk is None
    assert await ledger(server, session_id) == []
    assert await payment_status(server, session_id) == "canceled"
    ref = record.payment_ref or ""
    assert await provider_requests(server, ref) == [f"{session_id}:release"]


async def test_a_charger_that_rejects_the_start_releases_the_hold_and_says_so(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    server = await servers()
    await demo_site(server)
    sim = charger(server, meter_interval=0.2)
    sim.accepts_remote_start = False
    await chargers(server, sim)
    phone = phone_factory(server)

    session_id = session_id_of(await phone.start("CP-1", 1))
    paid = await phone.pay(session_id)
    assert paid.headers["location"] == f"/s/{session_id}"
    record = await wait_for_state(server, session_id, "START_FAILED", timeout=5)
    assert record.reason == "charger_rejected"
    await released(server, session_id)
    page = await phone.client.get(f"/s/{session_id}")
    assert "The charger refused to start." in page.text
    assert "Your hold has been released." in page.text
    assert await ledger(server, session_id) == []
    assert snapshot(record)["state"] == "START_FAILED"


async def test_a_charger_still_offline_when_the_start_timeout_ends_fails_and_releases_the_hold(
    servers: StartServer, phone_factory: Phones
) -> None:
    server = await servers(start_timeout=2.0)
    await demo_site(server)
    sim = charger(server, meter_interval=0.2)
    task = await run_charger(server, sim)
    phone = phone_factory(server)
    session_id = session_id_of(await phone.start("CP-1", 1))
    # The charger drops off the network while the driver types in the card.
    await stop_sim(sim, task)

    async def gone() -> bool:
        return server.runtime.registry.get("CP-1") is None

    await eventually(gone)
    began = time.monotonic()
    paid = await phone.pay(session_id)
    assert paid.headers["location"] == f"/s/{session_id}"
    # It waits for the charger (a restart, a blip) within the start timeout, no longer.
    await wait_for_state(server, session_id, "STARTING", timeout=2)
    record = await wait_for_state(server, session_id, "START_FAILED", timeout=5)
    assert 2 <= time.monotonic() - began < 5
    assert record.reason == "charger_offline"
    await released(server, session_id)
    page = await phone.client.get(f"/s/{session_id}")
    assert "The charger is offline." in page.text


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_back_within_the_start_timeout_gets_the_start_at_once(
    servers: StartServer, chargers: Chargers, phone_factory: Phones, version: str
) -> None:
    server = await servers(start_timeout=30.0)
    await demo_site(server)
    sim = charger(server, version, meter_interval=0.2)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = session_id_of(await phone.start("CP-1", 1))
    url = await cut_off(sim)

    async def gone() -> bool:
        return server.runtime.registry.get("CP-1") is None

    await eventually(gone)
    await phone.pay(session_id)
    await wait_for_state(server, session_id, "STARTING", timeout=2)
    await asyncio.sleep(1.5)  # a few tries find no charger
    assert sim.connectors[1].transaction is None
    reconnect(sim, url)
    record = await wait_for_state(server, session_id, "CHARGING", timeout=8)
    assert record.transaction_pk is not None and record.reason is None
    assert len(await sent_to_charger(server, "CP-1", START_ACTION[version])) == 1


# -- the charger away mid-charge ----------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_offline_mid_charge_replays_its_queue_and_is_billed_once(
    servers: StartServer, chargers: Chargers, phone_factory: Phones, version: str
) -> None:
    server = await servers()
    await demo_site(server)
    sim = charger(server, version, meter_interval=0.2, power_kw=22.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = await charging(server, phone)
    unreachable = UnreachableProvider(server.runtime.payments)
    server.runtime.use_payments(unreachable)

    cut_at = utcnow()
    url = await cut_off(sim)

    async def queued() -> bool:
        return sim.queued >= 4

    await eventually(queued)
    # The driver unplugs while the charger is still offline: its stop waits in the queue too.
    await sim.stop_transaction(1, "EVDisconnected")
    tx = sim.connectors[1].finished[-1]
    meter_stop = sim.connectors[1].meter_wh
    await asyncio.sleep(0.3)
    assert (await record_of(server, session_id)).state == "CHARGING"

    reconnect(sim, url)
    record = await wait_for_state(server, session_id, "SETTLED", "NEEDS_REVIEW")
    assert record.state == "SETTLED", record.reason

    # Every reading counts, those made while offline included.
    assert record.transaction_pk is not None
    readings = await server.runtime.session_store.transaction_readings(record.transaction_pk)
    assert sum(1 for r in readings if r.at > cut_at) >= 3
    assert record.energy_wh == meter_stop - tx.meter_start_wh
    final = await price_up_to(server, record)
    assert record.captured_minor == record.cost_minor == final.total_due().minor > 0

    # Exactly once: one capture call, one ledger entry, and a repeated end changes nothing.
    await repeat_job(server, f"tx_ended:{record.transaction_pk}")
    await repeat_job(server, f"capture:{session_id}")
    assert [c[0] for c in unreachable.calls] == ["capture"]
    assert await ledger(server, session_id) == [("capture", record.captured_minor)]
    assert await provider_requests(server, record.payment_ref or "") == [f"{session_id}:capture"]
    assert (await record_of(server, session_id)).version == record.version
    payment = await server.runtime.payments.get(record.payment_ref or "")
    assert payment.status == "succeeded"
    assert payment.amount_received_minor == record.captured_minor


async def test_a_stop_stamped_with_the_last_samples_time_is_billed_to_its_meter_stop(
    servers: StartServer,
    chargers: Chargers,
    phone_factory: Phones,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = await servers()
    await demo_site(server, tariff="simple-per-kwh.json")
    sim = charger(server, meter_interval=3600.0, power_kw=22.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = session_id_of(await phone.start("CP-1", 1))
    await phone.pay(session_id)
    await wait_for_state(server, session_id, "CHARGING")

    # A charger whose clock has whole seconds: its last sample and its stop share one.
    instant = iso(utcnow().replace(microsecond=0) + timedelta(seconds=1))
    monkeypatch.setattr("plugpay.sim.charger.iso", lambda at=None: instant)
    sim.connectors[1].meter_wh += 300
    await sim.triggered("MeterValues", 1)
    sim.meter_interval = 10.0  # the stop adds 61 Wh more
    await sim.stop_transaction(1, "EVDisconnected")
    tx = sim.connectors[1].finished[-1]
    meter_stop = sim.connectors[1].meter_wh
    assert meter_stop - tx.meter_start_wh == 361

    record = await wait_for_state(server, session_id, "SETTLED")
    assert record.energy_wh == 361
    final = await price_up_to(server, record)
    assert record.captured_minor == record.cost_minor == final.total_due().minor
    assert record.breakdown is not None
    assert [line["quantity"] for line in record.breakdown["lines"]] == ["0.361"]


async def test_a_silent_charger_is_settled_from_its_last_reading_and_reconciled_later(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    server = await servers(silent_timeout=1.0)
    await demo_site(server)
    sim = charger(server, meter_interval=0.2, power_kw=350.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = await charging(server, phone)
    unreachable = UnreachableProvider(server.runtime.payments)
    server.runtime.use_payments(unreachable)

    url = await cut_off(sim)
    record = await wait_for_state(server, session_id, "SETTLED", timeout=8)
    assert record.reason == "charger_silent"
    # Settled from the last reading the server had.
    assert record.last_reading_at is not None
    assert record.stopped_at == record.last_reading_at
    settled = (await price_up_to(server, record)).total_due().minor
    assert record.captured_minor == record.cost_minor == settled > 0

    # Much later the charger is back with its queued readings and the stop.
    await asyncio.sleep(0.6)
    await sim.stop_transaction(1, "EVDisconnected")
    reconnect(sim, url)

    async def reconciled() -> bool:
        current = await record_of(server, session_id)
        return sim.queued == 0 and current.reason_detail is not None

    await eventually(reconciled, timeout=8)
    record = await record_of(server, session_id)
    late = (await price_up_to(server, record)).total_due().minor
    assert late > settled
    assert record.reason == "charger_silent"
    assert record.reason_detail == f"late stop priced {late}, settled {settled}"
    assert record.state == "SETTLED" and record.captured_minor == settled
    assert [c[0] for c in unreachable.calls] == ["capture"]
    assert await ledger(server, session_id) == [("capture", settled)]
    payment = await server.runtime.payments.get(record.payment_ref or "")
    assert payment.amount_received_minor == settled


# -- the payment provider away at capture --------------------------------------------


async def test_a_capture_is_retried_from_the_queue_with_the_same_key_until_it_succeeds(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    server = await servers()
    await demo_site(server)
    sim = charger(server, meter_interval=0.2, power_kw=22.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = await charging(server, phone)
    unreachable = UnreachableProvider(server.runtime.payments, failures=2)
    server.runtime.use_payments(unreachable)

    await phone.stop(session_id)
    record = await wait_for_state(server, session_id, "STOPPED")
    await first_attempt_failed(server, session_id)
    job = await payment_job(server, session_id)
    assert job is not None and job["kind"] == "capture" and job["done_at"] is None
    assert job["amount_minor"] == record.cost_minor > 0
    assert job["attempts"] == 1 and "connection refused" in job["last_error"]
    first_delay = job["next_attempt_at"] - utcnow()
    assert timedelta(seconds=2) < first_delay <= timedelta(seconds=5)
    assert await ledger(server, session_id) == []

    # Time passes; the server's own timer takes the job from the queue again.
    await make_job_due(server, session_id)

    async def attempts(n: int) -> bool:
        job = await payment_job(server, session_id)
        return job is not None and job["attempts"] == n

    await eventually(lambda: attempts(2), timeout=5)
    job = await payment_job(server, session_id)
    assert job is not None
    assert job["next_attempt_at"] - utcnow() > first_delay  # backs off

    await make_job_due(server, session_id)
    record = await wait_for_state(server, session_id, "SETTLED", timeout=5)
    assert record.captured_minor == record.cost_minor
    assert (
        unreachable.calls
        == [("capture", record.payment_ref, record.captured_minor, f"{session_id}:capture")] * 3
    )
    assert await ledger(server, session_id) == [("capture", record.captured_minor)]
    assert await provider_requests(server, record.payment_ref or "") == [f"{session_id}:capture"]
    job = await payment_job(server, session_id)
    assert job is not None and job["done_at"] is not None
    payment = await server.runtime.payments.get(record.payment_ref or "")
    assert payment.status == "succeeded"
    assert payment.amount_received_minor == record.captured_minor


async def test_a_capture_still_failing_when_the_hold_is_about_to_expire_needs_review(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    server = await servers()
    await demo_site(server)
    sim = charger(server, meter_interval=0.2, power_kw=22.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = await charging(server, phone)
    unreachable = UnreachableProvider(server.runtime.payments, failures=1000)
    server.runtime.use_payments(unreachable)

    await phone.stop(session_id)
    await wait_for_state(server, session_id, "STOPPED")
    await first_attempt_failed(server, session_id)
    await make_job_due(server, session_id, give_up_at=utcnow() - timedelta(seconds=1))
    record = await wait_for_state(server, session_id, "NEEDS_REVIEW", timeout=5)
    assert "unreachable" in (record.reason or "")
    assert record.captured_minor is None
    job = await payment_job(server, session_id)
    assert job is not None and job["done_at"] is not None
    assert await ledger(server, session_id) == []
    assert {c[3] for c in unreachable.calls} == {f"{session_id}:capture"}
    # The hold is left for a person to settle; the driver is told.
    assert (await server.runtime.payments.get(record.payment_ref or "")).status == (
        "requires_capture"
    )
    page = await phone.client.get(f"/s/{session_id}")
    assert "Under review" in page.text


async def test_a_restarted_server_finishes_a_pending_capture(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    first = await servers()
    await demo_site(first)
    sim = charger(first, meter_interval=0.2, power_kw=22.0)
    await chargers(first, sim)
    phone = phone_factory(first)
    session_id = await charging(first, phone)
    first.runtime.use_payments(UnreachableProvider(first.runtime.payments, failures=1000))
    await phone.stop(session_id)
    record = await wait_for_state(first, session_id, "STOPPED")
    await first_attempt_failed(first, session_id)
    await first.stop()

    second = await servers(port=first.port)
    await make_job_due(second, session_id)  # the server was down a while
    settled = await wait_for_state(second, session_id, "SETTLED", timeout=5)
    assert settled.captured_minor == record.cost_minor > 0
    # The provider saw one capture, under the session's key.
    assert await provider_requests(second, record.payment_ref or "") == [f"{session_id}:capture"]
    assert await ledger(second, session_id) == [("capture", record.cost_minor)]
    payment = await second.runtime.payments.get(record.payment_ref or "")
    assert payment.status == "succeeded" and payment.amount_received_minor == record.cost_minor


# -- the server restarted mid-session ----------------------------------------------


async def test_a_server_restart_mid_session_keeps_the_live_cost_and_bills_every_reading(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    first = await servers()
    await demo_site(first)
    sim = charger(first, meter_interval=0.2, power_kw=1000.0)
    await chargers(first, sim)
    phone = phone_factory(first)
    session_id = await charging(first, phone)

    async def readings_past(count: int, server: RunningServer) -> bool:
        return await reading_count(server, session_id) >= count

    await eventually(lambda: readings_past(4, first))
    before = await record_of(first, session_id)
    assert before.cost_minor > 0
    await first.stop()

    second = await servers(port=first.port)
    count = await reading_count(second, session_id)

    async def priced_here() -> bool:
        current = await record_of(second, session_id)
        return (
            current.last_reading_at is not None
            and before.last_reading_at is not None
            and current.last_reading_at > before.last_reading_at
            and await reading_count(second, session_id) >= count + 3
        )

    await eventually(priced_here)
    after = await record_of(second, session_id)
    # The rebuilt pricer continues from the figure before the restart: the live cost
    # is the engine's price of every reading so far, the ones before the restart included.
    expected = await price_up_to(second, after, until=after.last_reading_at)
    assert after.cost_minor == expected.total_due().minor >= before.cost_minor
    assert after.energy_wh > before.energy_wh

    await phone.stop(session_id)
    record = await wait_for_state(second, session_id, "SETTLED")
    final = await price_up_to(second, record)
    assert record.captured_minor == record.cost_minor == final.total_due().minor
    assert await ledger(second, session_id) == [("capture", record.captured_minor)]


# -- two phones, one connector -------------------------------------------------------


async def test_two_phones_racing_for_one_connector_one_gets_it_the_other_is_told_before_paying(
    server: RunningServer, chargers: Chargers, phone_factory: Phones
) -> None:
    await demo_site(server)
    await chargers(server, charger(server, meter_interval=10.0))
    first, second = phone_factory(server), phone_factory(server)
    # Both phones show the connector as free, then both tap "start" at once.
    for phone in (first, second):
        assert (await phone.client.get("/c/CP-1/1")).status_code == 200
    answers = await asyncio.gather(first.start("CP-1", 1), second.start("CP-1", 1))

    locations = [a.headers["location"] for a in answers]
    assert all(a.status_code == 303 for a in answers)
    winners = [loc for loc in locations if loc.startswith("/pay/")]
    losers = [loc for loc in locations if loc.startswith("/c/CP-1/1?error=")]
    assert len(winners) == 1 and len(losers) == 1, locations
    loser = second if losers[0] == locations[1] else first
    told = await loser.client.get(losers[0])
    assert "Someone else" in told.text, told.text
    assert (await loser.client.get(winners[0])).status_code == 404

    async with server.runtime.db.connect() as conn:
        sessions = await conn.scalar(select(func.count()).select_from(t.charging_sessions))
    assert sessions == 1
    assert len(await payment_intents(server)) == 1  # no hold placed for the loser


async def test_the_database_refuses_a_second_active_session_on_a_connector(
    server: RunningServer,
) -> None:
    await demo_site(server)
    place = await server.runtime.services.reservations.connector("CP-1", 1)

    def session(n: int) -> dict[str, Any]:
        return {
            "id": f"racing-session-{n:02d}-0123456789",
            "charger_id": "CP-1",
            "connector_id": 1,
            "owner_hash": "0" * 64,
            "lang": "en",
            "tariff_pk": place.tariff_pk,
            "time_zone": "UTC",
            "currency": "EUR",
            "hold_minor": 5000,
            "id_tag": f"race{n:02d}",
            "payment_provider": "demo",
        }

    async def create(values: dict[str, Any]) -> None:
        async with server.runtime.services.reservations.uow() as uow:
            await uow.sessions.create(values)

    # Straight at the store, past any check in Python: only the database decides.
    outcomes = await asyncio.gather(*(create(session(n)) for n in range(6)), return_exceptions=True)
    assert sum(o is None for o in outcomes) == 1
    assert all(isinstance(o, ConnectorTaken) for o in outcomes if o is not None), outcomes
    # Another connector of the same charger is not affected.
    other = session(7) | {"connector_id": 2}
    await create(other)


# -- the hold ---------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_charge_is_stopped_before_its_cost_exceeds_the_hold(
    servers: StartServer, chargers: Chargers, phone_factory: Phones, version: str
) -> None:
    server = await servers(default_hold=Decimal("1.00"), ocpp_call_timeout=10.0)
    await demo_site(server, tariff="simple-per-kwh.json")
    # A megawatt charger: without the limit, a few seconds would cost more than the hold.
    sim = charger(server, version, meter_interval=0.2, power_kw=1000.0)
    await chargers(server, sim)
    phone = phone_factory(server)

    session_id = session_id_of(await phone.start("CP-1", 1))
    await phone.pay(session_id)
    record = await wait_for_state(server, session_id, "SETTLED", "NEEDS_REVIEW", timeout=5)
    assert record.state == "SETTLED", record.reason
    assert record.reason == "hold_limit"
    assert snapshot(record)["reason"] == "hold_limit"
    assert record.hold_minor == 100
    final = await price_up_to(server, record)
    assert record.captured_minor is not None
    assert 0 < record.captured_minor == final.total_due().minor <= record.hold_minor
    assert await ledger(server, session_id) == [("capture", record.captured_minor)]
    assert await sent_to_charger(server, "CP-1", STOP_ACTION[version])
    page = await phone.client.get(f"/s/{session_id}")
    assert "Stopped before the cost reached the hold." in page.text


async def test_a_stop_the_charger_refuses_leaves_the_charge_running_and_stoppable(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    server = await servers()
    await demo_site(server)
    sim = StubbornCharger("CP-1", server.ocpp_url, PASSWORD, meter_interval=0.2, max_backoff=1.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = await charging(server, phone)

    sim.refusals = 1
    await phone.stop(session_id)
    record = await wait_for_state(server, session_id, "CHARGING")
    assert sim.connectors[1].transaction is not None  # still charging at the charger
    page = await phone.client.get(f"/s/{session_id}")
    assert 'action="/s/' in page.text  # the driver can ask again
    await phone.stop(session_id)
    record = await wait_for_state(server, session_id, "SETTLED")
    assert record.captured_minor == (await price_up_to(server, record)).total_due().minor


async def test_the_hold_limit_asks_again_when_the_charger_refuses_to_stop(
    servers: StartServer, chargers: Chargers, phone_factory: Phones
) -> None:
    server = await servers(default_hold=Decimal("1.00"))
    await demo_site(server, tariff="simple-per-kwh.json")
    sim = StubbornCharger(
        "CP-1", server.ocpp_url, PASSWORD, meter_interval=0.2, power_kw=1000.0, max_backoff=1.0
    )
    sim.refusals = 2
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = session_id_of(await phone.start("CP-1", 1))
    await phone.pay(session_id)
    record = await wait_for_state(server, session_id, "SETTLED", "NEEDS_REVIEW", timeout=5)
    assert record.state == "SETTLED" and record.reason == "hold_limit"
    assert sim.refusals == 0
    assert record.captured_minor is not None and record.captured_minor <= record.hold_minor
    assert len(await sent_to_charger(server, "CP-1", STOP_ACTION["1.6"])) == 3


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_stop_asked_while_the_charger_was_offline_is_asked_again_when_it_is_back(
    servers: StartServer, chargers: Chargers, phone_factory: Phones, version: str
) -> None:
    server = await servers()
    await demo_site(server)
    sim = charger(server, version, meter_interval=0.2, power_kw=22.0)
    await chargers(server, sim)
    phone = phone_factory(server)
    session_id = await charging(server, phone)
    server.runtime.services.charging.timeouts.stop_retry = timedelta(seconds=0.5)

    page = await phone.client.get(f"/s/{session_id}")
    url = await cut_off(sim)

    async def gone() -> bool:
        return server.runtime.registry.get("CP-1") is None

    await eventually(gone)
    # The driver taps stop while the charger is unreachable: nobody can tell it yet.
    stopped = await phone.client.post(
        f"/s/{session_id}/stop", data={"_csrf_token": csrf_of(page.text)}
    )
    assert stopped.status_code == 303
    assert (await record_of(server, session_id)).state == "STOPPING"

    # Back online, the charger knows nothing of the stop and charges on; it is asked again.
    reconnect(sim, url)
    record = await wait_for_state(server, session_id, "SETTLED", timeout=8)
    assert record.reason == "driver"
    assert len(await sent_to_charger(server, "CP-1", STOP_ACTION[version])) >= 1
    assert sim.connectors[1].transaction is None
