"""Member prices: accounts in driver groups get the tariff assigned to
``member:<group>``; the connector page shows it beside the guest price, and a
member's session is priced with it. Groups come from the command line or from
the provider a driver signs in with."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plugpay.cli import main as plugpay_main
from support.accounts import AccountSite, account_site
from support.driver import Phone, csrf_of, demo_site, running_sim, stop_sim

EXAMPLES = Path(__file__).resolve().parents[2] / "infra" / "examples"


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[AccountSite]:
    async with account_site(database_url) as running:
        await demo_site(running.server)
        tariffs = running.server.runtime.services.tariffs
        await tariffs.import_tariff((EXAMPLES / "member-price.json").read_bytes())
        await tariffs.assign("MEMBER", charger_id="CP-1", audience="member:staff")
        yield running


async def test_a_member_sees_and_pays_the_member_price(site: AccountSite) -> None:
    sim, task = await running_sim(site.server)
    alice, bob = await site.signed_in("alice"), await site.signed_in("bob")
    guest = Phone(site.server)
    try:
        groups = site.server.runtime.services.groups
        await groups.add("staff", account_id=await site.account_id("alice"))
        page = (await alice.get("/c/CP-1/1")).text
        assert "Your member price" in page and "As a member of the group staff" in page
        assert "€0.357 / kWh" in page  # 0.30 + 19 % VAT
        assert 'id="guest-price"' in page and "€0.595 / kWh" in page  # the guest price too
        for other in (bob, guest.client):  # not a member: the guest price only
            text = (await other.get("/c/CP-1/1")).text
            assert "Your member price" not in text and 'id="guest-price"' not in text

        started = await alice.post("/c/CP-1/1/start", data={"_csrf_token": csrf_of(page)})
        session_id = started.headers["location"].rsplit("/", 1)[-1]
        record = await site.server.runtime.session_store.get(session_id)
        member = await site.server.runtime.tariff_store.latest("MEMBER")
        assert record is not None and member is not None and record.tariff_pk == member.pk

        # Out of the group: the guest price again.
        assert await groups.remove("staff", account_id=await site.account_id("alice"))
        await alice.post(
            f"/pay/{session_id}/cancel",
            data={"_csrf_token": csrf_of((await alice.get(f"/pay/{session_id}")).text)},
        )
        assert "Your member price" not in (await alice.get("/c/CP-1/1")).text
    finally:
        await alice.aclose()
        await bob.aclose()
        await guest.close()
        await stop_sim(sim, task)


async def test_signing_in_with_a_provider_joins_its_groups(database_url: str) -> None:
    async with account_site(database_url, provider_groups=("staff",)) as running:
        browser = await running.signed_in("carol")
        try:
            members = await running.server.runtime.services.groups.members("staff")
            assert [(g, a.subject) for g, a in members] == [("staff", "carol")]
        finally:
            await browser.aclose()


def test_group_commands_say_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLUGPAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("PLUGPAY_SECRET_FILE", str(tmp_path / "secret"))
    assert plugpay_main(["group", "add", "staff", "--email", "nobody@example.org"]) != 0
    assert "no such account" in capsys.readouterr().err
    assert plugpay_main(["group", "add", "Bad Name", "--account", "1"]) != 0
    assert "group name" in capsys.readouterr().err
    assert plugpay_main(["group", "list"]) == 0
    assert "no members" in capsys.readouterr().out


async def test_a_group_price_wins_over_any_generic_one_and_members_only_works(
    database_url: str,
) -> None:
    async with account_site(database_url) as running:
        server = running.server
        tariffs = server.runtime.services.tariffs
        # Only members have a price on connector 2; the group's is typed AD_HOC_PAYMENT
        # while the connector's own (on connector 1) is untyped.
        await demo_site(server)
        member = json.loads((EXAMPLES / "member-price.json").read_text())
        member.update(id="STAFF-ADHOC", type="AD_HOC_PAYMENT")
        await tariffs.import_tariff(member)
        await tariffs.assign("STAFF-ADHOC", charger_id="CP-1", audience="member:staff")
        simple = json.loads((EXAMPLES / "simple-per-kwh.json").read_text())
        simple.pop("type")
        await tariffs.import_tariff(simple)
        await tariffs.assign("SIMPLE-KWH", charger_id="CP-1", connector_id=1)
        alice = await running.signed_in("alice")
        try:
            await server.runtime.services.groups.add(
                "staff", account_id=await running.account_id("alice")
            )
            page = (await alice.get("/c/CP-1/1")).text
            assert "Your member price" in page and "€0.357 / kWh" in page
        finally:
            await alice.aclose()
