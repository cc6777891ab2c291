"""A signed-in driver's account: history with monthly totals, CSV, object-level
authorisation between drivers, and account deletion.

Drivers sign in through the hostile provider in its ``good`` mode (a correct
ID token per subject); the sign-in itself is tested in test_sign_in.py. The
charges are written as finished rows: this is about what the account pages
show and who may see them, not about how a charge is run.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from plugpay.store import tables as t
from support.accounts import AccountSite, account_site
from support.driver import csrf_of, demo_site


class Site(AccountSite):
    async def charge(self, account_id: int | None, started: datetime, **values: Any) -> str:
        """A finished charge of the account, as the settlement leaves it."""
        session_id = secrets.token_urlsafe(24)
        tariff = await self.server.runtime.tariff_store.latest("TOU-IDLE")
        assert tariff is not None
        row = {
            "id": session_id,
            "charger_id": "CP-1",
            "connector_id": 1,
            "state": "SETTLED",
            "owner_hash": "0" * 64,
            "account_id": account_id,
            "lang": "en",
            "tariff_pk": tariff.pk,
            "time_zone": "Europe/Berlin",
            "currency": "EUR",
            "hold_minor": 5000,
            "id_tag": secrets.token_hex(10),
            "payment_provider": "demo",
            "energy_wh": 12_345,
            "cost_minor": 599,
            "captured_minor": 599,
            "created_at": started,
            "started_at": started,
            "stopped_at": started.replace(hour=(started.hour + 1) % 24),
            "updated_at": started,
            "version": 1,
            **values,
        }
        async with self.server.runtime.db.begin() as conn:
            await conn.execute(insert(t.charging_sessions).values(**row))
        return session_id


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async with account_site(database_url) as running:
        await demo_site(running.server)
        yield Site(running.server, running.provider)


async def test_history_has_local_months_totals_and_a_csv(site: Site) -> None:
    alice = await site.signed_in("alice")
    try:
        me = await site.account_id("alice")
        # 23:30 UTC on 28 February is 00:30 on 1 March in Berlin: March's.
        march = await site.charge(me, datetime(2026, 2, 28, 23, 30, tzinfo=UTC), receipt_no=7)
        await site.charge(me, datetime(2026, 3, 10, 9, 0, tzinfo=UTC), captured_minor=1001)
        february = await site.charge(me, datetime(2026, 2, 27, 12, 0, tzinfo=UTC))
        await site.charge(None, datetime(2026, 3, 11, 9, 0, tzinfo=UTC))  # nobody's

        page = await alice.get("/me/sessions")
        assert page.status_code == 200
        text = page.text
        assert text.index("March 2026") < text.index("February 2026")
        assert "€16.00" in text  # 5.99 + 10.01 in March
        assert "24.69 kWh" in text
        assert f"/r/{march}" in text and f"/r/{february}" in text

        exported = await alice.get("/me/sessions.csv")
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert rows[0]["session_id"] == february  # oldest first
        assert len(rows) == 3
        first_march = next(r for r in rows if r["session_id"] == march)
        assert first_march["started_local"] == "2026-03-01T00:30:00+01:00"
        assert first_march["receipt_no"] == "000007"
        assert first_march["amount"] == "5.99" and first_march["energy_kwh"] == "12.345"
    finally:
        await alice.aclose()


async def test_account_pages_ask_a_signed_out_browser_to_sign_in(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.http_url) as browser:
        for path in ("/me/sessions", "/me/sessions.csv", "/me/delete"):
            response = await browser.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == f"/me?next={path}"
        choices = await browser.get("/me?next=/me/sessions")
        assert 'href="/login/id?next=/me/sessions"' in choices.text
        # A next that leaves the site is dropped.
        assert "evil" not in (await browser.get("/me?next=//evil.example")).text


async def test_one_driver_never_sees_or_touches_anothers_charges(site: Site) -> None:
    alice, bob = await site.signed_in("alice"), await site.signed_in("bob")
    try:
        hers = await site.charge(
            await site.account_id("alice"), datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
        )
        for path in (f"/r/{hers}", f"/s/{hers}", f"/pay/{hers}", f"/s/{hers}/events"):
            assert (await bob.get(path)).status_code == 404, path
            assert (await alice.get(path)).status_code in (200, 303), path
        page = await bob.get(f"/s/{hers}")
        assert page.status_code == 404
        stop = await bob.post(
            f"/s/{hers}/stop", data={"_csrf_token": csrf_of((await bob.get("/me")).text)}
        )
        assert stop.status_code == 404
        assert hers not in (await bob.get("/me/sessions")).text
        assert hers not in (await bob.get("/me/sessions.csv")).text
        assert hers in (await alice.get("/me/sessions.csv")).text
    finally:
        await alice.aclose()
        await bob.aclose()


async def test_deleting_the_account_keeps_the_books_and_forgets_the_person(site: Site) -> None:
    alice = await site.signed_in("alice")
    try:
        me = await site.account_id("alice")
        done = await site.charge(me, datetime(2026, 3, 10, 9, 0, tzinfo=UTC), receipt_no=3)
        running = await site.charge(
            me, datetime(2026, 3, 12, 9, 0, tzinfo=UTC), state="CHARGING", captured_minor=None
        )
        async with site.server.runtime.db.begin() as conn:
            await conn.execute(
                insert(t.push_subscriptions).values(
                    session_id=done,
                    endpoint="https://push.example.org/x",
                    p256dh="k",
                    auth="a",
                    created_at=datetime.now(UTC),
                )
            )
            await conn.execute(
                insert(t.saved_cards).values(
                    account_id=me,
                    provider="demo",
                    customer_ref="demo_cus_x",
                    method_ref="demo_pm_x",
                    card_brand="visa",
                    card_last4="4242",
                    is_default=True,
                    created_at=datetime.now(UTC),
                )
            )
            await conn.execute(
                insert(t.id_tags).values(
                    id_tag="MINE-1", status="Accepted", account_id=me, created_at=datetime.now(UTC)
                )
            )
        confirm = await alice.get("/me/delete")
        assert confirm.status_code == 200 and "Delete my account" in confirm.text
        busy = await alice.post("/me/delete", data={"_csrf_token": csrf_of(confirm.text)})
        assert busy.status_code == 409 and "not finished" in busy.text
        async with site.server.runtime.db.connect() as conn:
            row = (await conn.execute(select(t.accounts))).mappings().one()
        assert row["deleted_at"] is None and row["subject"] == "alice"

        async with site.server.runtime.db.begin() as conn:
            await conn.execute(
                update(t.charging_sessions)
                .where(t.charging_sessions.c.id == running)
                .values(state="SETTLED", captured_minor=100)
            )
        deleted = await alice.post("/me/delete", data={"_csrf_token": csrf_of(confirm.text)})
        assert deleted.status_code == 200 and "Your account is deleted" in deleted.text
        assert any(
            h.startswith("plugpay_login=") and "Max-Age=0" in h
            for h in deleted.headers.get_list("set-cookie")
        )
        async with site.server.runtime.db.connect() as conn:
            row = (await conn.execute(select(t.accounts))).mappings().one()
            logins = (await conn.execute(select(t.account_logins))).all()
            pushes = (await conn.execute(select(t.push_subscriptions))).all()
            card = (await conn.execute(select(t.saved_cards))).mappings().one()
            kept = (
                (
                    await conn.execute(
                        select(t.charging_sessions).where(t.charging_sessions.c.id == done)
                    )
                )
                .mappings()
                .one()
            )
        assert row["name"] is None and row["email"] is None and row["subject"] != "alice"
        assert row["deleted_at"] is not None
        assert logins == [] and pushes == []
        assert card["removed_at"] is not None and card["card_last4"] is None
        async with site.server.runtime.db.connect() as conn:
            tags = (await conn.execute(select(t.id_tags.c.id_tag))).scalars().all()
        assert "MINE-1" not in tags
        assert (
            kept["captured_minor"] == 599 and kept["receipt_no"] == 3 and kept["account_id"] == me
        )
        # The browser is signed out; signing in again starts a new, empty account.
        assert (await alice.get("/me/sessions")).status_code == 303
    finally:
        await alice.aclose()
    again = await site.signed_in("alice")
    try:
        assert await site.account_id("alice") != me
        assert done not in (await again.get("/me/sessions")).text
    finally:
        await again.aclose()
