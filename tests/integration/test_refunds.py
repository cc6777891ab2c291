"""Refunds of settled sessions against the real server: the demo payment provider,
the job worker, the ledger, the receipt page and `plugpay refund` in its own process
(sharing the server's database)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import make_settings
from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.domain.ledger import vat_share
from plugpay.domain.money import Money
from plugpay.runtime import Runtime, build_runtime
from plugpay.services.ports.ledger import PaymentRecord, RefundRecord
from plugpay.sim.charger import VirtualCharger
from plugpay.web.format import money
from support.driver import Phone, demo_site, eventually, stop_sim
from support.server import RunningServer
from support.sessions import charger, charging, record_of, run_charger, wait_for_state

PLUGPAY = [sys.executable, "-m", "plugpay.cli"]


@dataclass
class Settled:
    server: RunningServer
    phone: Phone
    session_id: str
    captured: int  # minor units, VAT included
    vat: int  # the VAT inside it

    @property
    def runtime(self) -> Runtime:
        return self.server.runtime


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
async def sim(server: RunningServer) -> AsyncIterator[VirtualCharger]:
    await demo_site(server, tariff="simple-per-kwh.json")
    # A fast charger: a few euros in a few seconds (each reading stays plausible).
    sim = charger(server, meter_interval=0.2, power_kw=10_000.0)
    task = await run_charger(server, sim)
    yield sim
    await stop_sim(sim, task)


@pytest.fixture
async def phone(server: RunningServer) -> AsyncIterator[Phone]:
    phone = Phone(server)
    yield phone
    await phone.close()


async def settle(server: RunningServer, phone: Phone, connector_id: int = 1) -> Settled:
    session_id = await charging(server, phone, connector_id=connector_id)

    async def costs_a_few_euros() -> bool:
        return (await record_of(server, session_id)).cost_minor >= 500

    await eventually(costs_a_few_euros, timeout=30)
    stopped = await phone.stop(session_id)
    assert stopped.status_code == 303
    record = await wait_for_state(server, session_id, "SETTLED")
    assert record.captured_minor is not None and record.captured_minor >= 500
    assert record.breakdown is not None and record.breakdown["total_incl_vat"] is not None
    payment = await server.runtime.ledger.of_session(session_id)
    assert payment is not None and payment.captured_minor == record.captured_minor
    # The VAT booked with the capture is the breakdown's.
    incl = Money.parse(record.breakdown["total_incl_vat"], "EUR").minor
    excl = Money.parse(record.breakdown["total_excl_vat"], "EUR").minor
    assert incl == record.captured_minor and payment.captured_vat_minor == incl - excl > 0
    return Settled(server, phone, session_id, record.captured_minor, payment.captured_vat_minor)


@pytest.fixture
async def settled(server: RunningServer, sim: VirtualCharger, phone: Phone) -> Settled:
    return await settle(server, phone)


async def succeeded(settled: Settled, refund_id: int) -> RefundRecord:
    async def done() -> bool:
        refunds = await settled.runtime.ledger.refunds_of_session(settled.session_id)
        return any(r.id == refund_id and r.state != "pending" for r in refunds)

    await eventually(done, timeout=15)
    refunds = await settled.runtime.ledger.refunds_of_session(settled.session_id)
    refund = next(r for r in refunds if r.id == refund_id)
    assert refund.state == "succeeded", refund
    return refund


async def payment(settled: Settled) -> PaymentRecord:
    record = await settled.runtime.ledger.of_session(settled.session_id)
    assert record is not None
    return record


async def provider_refunds(settled: Settled) -> list[int]:
    record = await record_of(settled.server, settled.session_id)
    assert record.payment_ref is not None
    return [r.amount_minor for r in await settled.runtime.payments.list_refunds(record.payment_ref)]


async def books(settled: Settled) -> dict[str, int]:
    """The session's ledger by account, after checking that every journal balances
    and that the whole ledger does."""
    journals = await settled.runtime.ledger.journals_of_session(settled.session_id)
    totals: dict[str, int] = {}
    for journal in journals:
        assert sum(amount for _, amount in journal.lines) == 0, journal
        for account, amount in journal.lines:
            totals[account] = totals.get(account, 0) + amount
    trial = await settled.runtime.ledger.trial_balance()
    assert sum(trial.values()) == 0, trial
    return totals


async def check_books(settled: Settled, refunded: list[int]) -> None:
    """Captured, less the refunds: each refund gives back its amount, its share of
    the VAT from VAT payable and the rest from revenue."""
    vat_back = sum(vat_share(a, settled.captured, settled.vat) for a in refunded)
    totals = await books(settled)
    assert totals.get("driver_receivable", 0) == settled.captured - sum(refunded)
    assert totals.get("refunds", 0) == sum(refunded) - vat_back
    assert totals.get("vat_payable", 0) == -(settled.vat - vat_back)
    assert totals.get("operator_revenue", 0) == -(settled.captured - settled.vat)
    assert totals.get("driver_hold", 0) == 0 and totals.get("hold_offset", 0) == 0
    journals = await settled.runtime.ledger.journals_of_session(settled.session_id)
    assert [j.amount for j in journals if j.movement == "refunded"] == refunded
    assert (await payment(settled)).refunded_minor == sum(refunded)
    assert sorted(await provider_refunds(settled)) == sorted(refunded)


async def plugpay(server: RunningServer, tmp_path: Path, *args: str) -> Done:
    """The `plugpay` command in its own process, on the running server's database."""
    env = {
        **os.environ,
        "PLUGPAY_DATABASE_URL": server.settings.database_url,
        "PLUGPAY_SECRET_FILE": str(tmp_path / "secret"),
    }
    process = await asyncio.create_subprocess_exec(
        *PLUGPAY,
        *args,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return Done(process.returncode, stdout.decode(), stderr.decode())


def one_line_error(done: Done) -> str:
    assert done.returncode == 2, done
    assert done.stderr.startswith("plugpay: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip()


async def test_a_settled_session_is_refunded_in_part_and_then_in_full(
    settled: Settled, tmp_path: Path
) -> None:
    refunds = settled.runtime.services.refunds
    sid = settled.session_id

    # Part of it, through the service.
    asked = await refunds.refund(sid, Decimal("1.00"), "Display showed the wrong price")
    assert asked.new and asked.refund.amount_minor == 100 and asked.refund.state == "pending"
    first = await succeeded(settled, asked.refund.id)
    assert first.provider_ref is not None and first.done_at is not None
    await check_books(settled, [100])

    # Asking again refunds nothing more.
    again = await refunds.refund(sid, Decimal("1.00"), "Display showed the wrong price")
    assert not again.new and again.refund.id == first.id
    await asyncio.sleep(1.0)  # a worker would have had time to run anything queued
    await check_books(settled, [100])

    # Part of it, from the command line while the server runs.
    cli = await plugpay(
        settled.server,
        tmp_path,
        "refund",
        "--amount",
        "1.00",
        "--reason",
        "Idle fee waived",
        "--wait",
        "--",
        sid,
    )
    assert cli.returncode == 0, cli
    second_id = int(cli.stdout.split()[1].rstrip(":"))
    assert cli.stdout.strip() == f"refund {second_id}: 1.00 EUR (succeeded)"
    await check_books(settled, [100, 100])
    repeated = await plugpay(
        settled.server,
        tmp_path,
        "refund",
        "--amount",
        "1",
        "--reason",
        "Idle fee waived",
        "--",
        sid,
    )
    assert repeated.returncode == 0, repeated
    assert repeated.stdout.strip() == (
        f"asked before: refund {second_id}: 1.00 EUR (succeeded); nothing more is refunded"
    )
    await check_books(settled, [100, 100])

    # More than is left: refused with the amount that is left, and nothing changes.
    left = settled.captured - 200
    with pytest.raises(InvalidInput, match="can still be refunded") as refused:
        await refunds.refund(sid, Money(left + 1, "EUR").to_decimal(), "Too much")
    assert str(Money(left, "EUR")) in str(refused.value)
    too_much = await plugpay(
        settled.server,
        tmp_path,
        "refund",
        "--amount",
        str(Money(left + 1, "EUR").to_decimal()),
        "--reason",
        "Too much",
        "--",
        sid,
    )
    assert (
        one_line_error(too_much) == f"plugpay: at most {Money(left, 'EUR')} can still be refunded"
    )
    assert [r.id for r in await settled.runtime.ledger.refunds_of_session(sid)] == [
        first.id,
        second_id,
    ]
    await check_books(settled, [100, 100])

    # The receipt shows each refund and what was paid after them.
    receipt = await settled.phone.client.get(f"/r/{sid}")
    assert receipt.status_code == 200
    assert receipt.text.count('class="price-row refund"') == 2
    assert "Display showed the wrong price" in receipt.text and "Idle fee waived" in receipt.text
    assert f"\u2212{money(100, 'EUR', 'en')}" in receipt.text
    assert f'id="receipt-net">{money(settled.captured - 200, "EUR", "en")}<' in receipt.text
    assert f'id="receipt-total">{money(settled.captured, "EUR", "en")}<' in receipt.text

    # All the rest.
    rest = await refunds.refund(sid, None, "Session cancelled by the operator")
    assert rest.new and rest.refund.amount_minor == left
    await succeeded(settled, rest.refund.id)
    await check_books(settled, [100, 100, left])
    totals = await books(settled)
    assert totals.get("driver_receivable", 0) == 0
    assert totals.get("vat_payable", 0) == 0, "VAT is still owed on a fully refunded session"
    assert totals.get("refunds", 0) == settled.captured - settled.vat
    assert (await payment(settled)).refunded_minor == settled.captured

    with pytest.raises(InvalidInput, match="refunded already"):
        await refunds.refund(sid, Decimal("0.01"), "One more cent")
    same_rest = await refunds.refund(sid, None, "Session cancelled by the operator")
    assert not same_rest.new and same_rest.refund.id == rest.refund.id
    receipt = await settled.phone.client.get(f"/r/{sid}")
    assert receipt.text.count('class="price-row refund"') == 3
    assert f'id="receipt-net">{money(0, "EUR", "en")}<' in receipt.text
    assert sum(await provider_refunds(settled)) == settled.captured


@pytest.fixture
async def other_runtimes(server: RunningServer) -> AsyncIterator[list[Runtime]]:
    """Two more instances' worth of services on the server's database (their own
    connections), whose workers do not run: only the server books refunds."""
    runtimes = [build_runtime(make_settings(server.settings.database_url)) for _ in range(2)]
    yield runtimes
    for runtime in runtimes:
        await runtime.close()


async def test_refunds_asked_at_once_never_add_up_to_more_than_the_capture(
    settled: Settled, other_runtimes: list[Runtime]
) -> None:
    services = [settled.runtime.services.refunds] + [r.services.refunds for r in other_runtimes]
    share = Money(settled.captured * 6 // 10, "EUR").to_decimal()  # 60 % each
    outcomes = await asyncio.gather(
        *(s.refund(settled.session_id, share, f"complaint {n}") for n, s in enumerate(services)),
        return_exceptions=True,
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(accepted) == 1, outcomes
    assert all(isinstance(e, InvalidInput) and "can still be refunded" in str(e) for e in refused)
    refund = await succeeded(settled, accepted[0].refund.id)

    # Everything that is left, asked for from all three at once: again only one.
    outcomes = await asyncio.gather(
        *(s.refund(settled.session_id, None, f"all of it {n}") for n, s in enumerate(services)),
        return_exceptions=True,
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(accepted) == 1, outcomes
    assert accepted[0].refund.amount_minor == settled.captured - refund.amount_minor
    await succeeded(settled, accepted[0].refund.id)
    await check_books(settled, [refund.amount_minor, accepted[0].refund.amount_minor])
    assert sum(await provider_refunds(settled)) == settled.captured


async def test_a_full_refund_in_parts_gives_back_exactly_the_vat_collected(
    settled: Settled,
) -> None:
    # Parts whose VAT shares, each rounded half up, do not add up to the VAT captured.
    c, v = settled.captured, settled.vat
    parts = next(
        (
            (a, b)
            for a in range(100, c // 3)
            for b in range(100, c // 3)
            if vat_share(a, c, v) + vat_share(b, c, v) + vat_share(c - a - b, c, v) != v
        ),
        None,
    )
    assert parts is not None, f"every split of {c} rounds its VAT {v} exactly"
    refunds = settled.runtime.services.refunds
    for n, part in enumerate(parts):
        asked = await refunds.refund(settled.session_id, Money(part, "EUR").to_decimal(), f"p{n}")
        await succeeded(settled, asked.refund.id)
    rest = await refunds.refund(settled.session_id, None, "the rest")
    await succeeded(settled, rest.refund.id)

    totals = await books(settled)
    assert totals.get("driver_receivable", 0) == 0
    # Everything went back: the VAT owed on the session is zero, the refunds are the net.
    assert totals.get("vat_payable", 0) == 0, (parts, c, v, totals)
    assert totals.get("refunds", 0) == c - v, (parts, c, v, totals)


async def test_a_session_that_captured_nothing_cannot_be_refunded(
    server: RunningServer, sim: VirtualCharger, phone: Phone, tmp_path: Path
) -> None:
    refunds = server.runtime.services.refunds
    sim.power_w = 11_000  # a slow charge: it runs on for the whole test
    session_id = await charging(server, phone)  # authorised and charging, nothing captured
    with pytest.raises(InvalidInput, match="nothing was captured"):
        await refunds.refund(session_id, Decimal("1.00"), "Goodwill")
    with pytest.raises(InvalidInput, match="nothing was captured"):
        await refunds.refund(session_id, None, "Goodwill")
    with pytest.raises(NotFound):
        await refunds.refund("no-such-session", Decimal("1.00"), "Goodwill")
    with pytest.raises(InvalidInput, match="reason"):
        await refunds.refund(session_id, Decimal("1.00"), "   ")

    cli = await plugpay(server, tmp_path, "refund", "--reason", "Goodwill", "--", session_id)
    assert one_line_error(cli) == "plugpay: nothing was captured for this session"
    assert await server.runtime.ledger.refunds_of_session(session_id) == []
    journals = await server.runtime.ledger.journals_of_session(session_id)
    assert [j.movement for j in journals] == ["authorised"]
    assert (await record_of(server, session_id)).state == "CHARGING"
