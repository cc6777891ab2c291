"""A session belongs to whoever holds its capability (the unguessable id plus the owner
cookie): anyone else gets 404 on every endpoint and changes nothing; cookies are
HttpOnly, SameSite=Lax and Secure outside localhost; forms need their CSRF token."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from conftest import make_settings
from plugpay.sim.charger import VirtualCharger
from plugpay.store import tables as t
from support.driver import Phone, csrf_of, demo_site, stop_sim
from support.server import RunningServer, start_server
from support.sessions import (
    charger,
    charging,
    meta_csrf,
    record_of,
    run_charger,
    session_id_of,
    wait_for_state,
)

PUSH_BODY = {"endpoint": "https://push.example/abc", "keys": {"p256dh": "BPk", "auth": "x"}}


@pytest.fixture
async def sim(server: RunningServer) -> AsyncIterator[VirtualCharger]:
    await demo_site(server)
    sim = charger(server, meter_interval=0.5, power_kw=22.0)
    task = await run_charger(server, sim)
    yield sim
    await stop_sim(sim, task)


@pytest.fixture
async def phones(server: RunningServer) -> AsyncIterator[tuple[Phone, Phone]]:
    owner, stranger = Phone(server), Phone(server)
    yield owner, stranger
    await owner.close()
    await stranger.close()


async def everything_about(server: RunningServer, session_id: str) -> dict[str, Any]:
    """Every row that says anything about the session, to compare before and after."""
    async with server.runtime.db.connect() as conn:
        rows: dict[str, Any] = {}
        for table in (
            t.charging_sessions,
            t.push_subscriptions,
            t.jobs,
            t.payments,
            t.ledger_entries,
            t.refunds,
        ):
            column = table.c.id if table is t.charging_sessions else table.c.session_id
            rows[table.name] = [
                dict(r)
                for r in (await conn.execute(select(table).where(column == session_id))).mappings()
            ]
        rows["demo_payments"] = [
            dict(r) for r in (await conn.execute(select(t.demo_payments))).mappings()
        ]
    return rows


async def attempts_on(client: httpx.AsyncClient, session_id: str, csrf: str) -> dict[str, int]:
    """Every endpoint of a session, as its owner would call it; the status of each."""
    form = {"_csrf_token": csrf}
    header = {"x-csrf-token": csrf}
    requests = {
        "GET /s": client.get(f"/s/{session_id}"),
        "GET /s/events": client.get(f"/s/{session_id}/events"),
        "GET /r": client.get(f"/r/{session_id}"),
        "GET /pay": client.get(f"/pay/{session_id}"),
        "GET /pay/return": client.get(f"/pay/{session_id}/return"),
        "POST /s/stop": client.post(f"/s/{session_id}/stop", data=form),
        "POST /s/push": client.post(f"/s/{session_id}/push", json=PUSH_BODY, headers=header),
        "POST /pay/demo": client.post(f"/pay/{session_id}/demo", data=form | {"card": "approve"}),
        "POST /pay/demo/authenticate": client.post(
            f"/pay/{session_id}/demo/authenticate", data=form | {"ok": "1"}
        ),
        "POST /pay/cancel": client.post(f"/pay/{session_id}/cancel", data=form),
    }
    statuses = {}
    for name, request in requests.items():
        statuses[name] = (await request).status_code
    return statuses


async def a_csrf_token(phone: Phone) -> str:
    """A valid CSRF token of this phone's own (from a page any visitor may open)."""
    return meta_csrf((await phone.client.get("/")).text)


async def test_someone_elses_session_is_not_found_on_any_endpoint_and_nothing_changes(
    server: RunningServer, sim: VirtualCharger, phones: tuple[Phone, Phone]
) -> None:
    owner, stranger = phones
    # The stranger has a session of their own too, so their cookie is a real one.
    session_id_of(await stranger.start("CP-1", 2))
    unpaid = session_id_of(await owner.start("CP-1", 1))

    # Before payment: nobody else can pay it with a demo card, or look at it.
    before = await everything_about(server, unpaid)
    statuses = await attempts_on(stranger.client, unpaid, await a_csrf_token(stranger))
    assert set(statuses.values()) == {404}, statuses
    assert await everything_about(server, unpaid) == before

    # While charging: nobody else can stop it or subscribe to its receipt.
    session_id = unpaid
    await owner.pay(session_id)
    await wait_for_state(server, session_id, "CHARGING")
    for intruder in (stranger.client, httpx.AsyncClient(base_url=server.http_url)):
        token = meta_csrf((await intruder.get("/")).text)
        before = await everything_about(server, session_id)
        before_state = before["charging_sessions"][0]["state"]
        statuses = await attempts_on(intruder, session_id, token)
        assert set(statuses.values()) == {404}, statuses
        after = await everything_about(server, session_id)
        assert after["charging_sessions"][0]["state"] == before_state == "CHARGING"
        assert after["push_subscriptions"] == []
        for table in ("jobs", "payments", "ledger_entries", "refunds"):
            assert after[table] == before[table], table
        if intruder is not stranger.client:
            await intruder.aclose()

    # A forged owner cookie is no better than none.
    forger = httpx.AsyncClient(
        base_url=server.http_url, cookies={"plugpay_owner": secrets.token_urlsafe(32)}
    )
    try:
        token = meta_csrf((await forger.get("/c/CP-1/2")).text)
        assert set((await attempts_on(forger, session_id, token)).values()) == {404}
    finally:
        await forger.aclose()

    # After the receipt is out, it is still the owner's alone.
    await owner.stop(session_id)
    await wait_for_state(server, session_id, "SETTLED")
    assert (await owner.client.get(f"/r/{session_id}")).status_code == 200
    assert (await stranger.client.get(f"/r/{session_id}")).status_code == 404
    assert (await stranger.client.get(f"/s/{session_id}")).status_code == 404


GUESSES = (
    "x",
    "0" * 15,
    "A" * 22,
    "q0v8Zb3Y1x2mKQ9o6wTnUe4sRdJc7LhA",  # well-formed, never issued
    "q0v8Zb3Y1x2mKQ9o6wTnUe4sRdJc7Lh!",
    "a" * 200,
    "%2e%2e%2fetc%2fpasswd",
    "%27%20OR%20%271%27%3D%271",
)


async def test_a_guessed_truncated_or_garbage_session_id_is_not_found(
    server: RunningServer, sim: VirtualCharger, phones: tuple[Phone, Phone]
) -> None:
    owner, _ = phones
    session_id = await charging(server, owner)  # the phone holds a real capability
    token = await a_csrf_token(owner)
    truncated = (session_id[:-1], session_id[:16], session_id + "A", session_id.swapcase())
    for wrong in (*GUESSES, *truncated):
        statuses = await attempts_on(owner.client, wrong, token)
        assert set(statuses.values()) == {404}, (wrong, statuses)
    assert (await owner.client.get(f"/s/{session_id}")).status_code == 200
    assert (await record_of(server, session_id)).state == "CHARGING"


async def test_session_ids_are_unguessable(
    server: RunningServer, sim: VirtualCharger, phones: tuple[Phone, Phone]
) -> None:
    first, second = phones
    ids = [
        session_id_of(await first.start("CP-1", 1)),
        session_id_of(await second.start("CP-1", 2)),
    ]
    for session_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,43}", session_id)
        assert len(session_id) * 6 >= 128
    assert ids[0] != ids[1]


async def test_forms_of_the_session_need_their_csrf_token(
    server: RunningServer, sim: VirtualCharger, phones: tuple[Phone, Phone]
) -> None:
    owner, _ = phones
    session_id = await charging(server, owner)
    assert (await owner.client.post(f"/s/{session_id}/stop", data={})).status_code == 403
    pushed = await owner.client.post(f"/s/{session_id}/push", json=PUSH_BODY)
    assert pushed.status_code == 403
    forged = await owner.client.post(f"/s/{session_id}/stop", data={"_csrf_token": "forged-token"})
    assert forged.status_code == 403
    assert (await everything_about(server, session_id))["push_subscriptions"] == []
    await wait_for_state(server, session_id, "CHARGING")


def cookies_set(response: httpx.Response) -> dict[str, Any]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            found[name] = morsel
    return found


async def start_by_hand(client: httpx.AsyncClient) -> tuple[httpx.Response, dict[str, Any]]:
    """The connector page and its start form, carrying the CSRF cookie by hand: a Secure
    cookie is never sent back over the plain HTTP of the test server."""
    page = await client.get("/c/CP-1/1")
    cookies = cookies_set(page)
    csrf_cookie = cookies["plugpay_csrf"]
    response = await client.post(
        "/c/CP-1/1/start",
        data={"_csrf_token": csrf_of(page.text)},
        headers={"Cookie": f"plugpay_csrf={csrf_cookie.value}"},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/pay/")
    return response, cookies | cookies_set(response)


async def test_cookies_are_httponly_samesite_and_secure_on_a_public_https_site(
    database_url: str,
) -> None:
    server = await start_server(make_settings(database_url, public_url="https://plugpay.example"))
    await demo_site(server)
    sim = charger(server, meter_interval=10.0)
    task = await run_charger(server, sim)
    client = httpx.AsyncClient(base_url=server.http_url, timeout=20)
    try:
        _, cookies = await start_by_hand(client)
        owner = cookies["plugpay_owner"]
        assert owner["httponly"] is True
        assert owner["secure"] is True
        assert owner["samesite"].lower() == "lax"
        assert owner["path"] == "/"
        assert len(owner.value) >= 22
        csrf = cookies["plugpay_csrf"]
        assert csrf["secure"] is True and csrf["samesite"].lower() == "lax"
    finally:
        await client.aclose()
        await stop_sim(sim, task)
        await server.stop()


async def test_cookies_on_localhost_are_httponly_and_samesite_but_not_secure(
    server: RunningServer, sim: VirtualCharger
) -> None:
    client = httpx.AsyncClient(base_url=server.http_url, timeout=20)
    try:
        _, cookies = await start_by_hand(client)
        owner = cookies["plugpay_owner"]
        assert owner["httponly"] is True
        assert owner["samesite"].lower() == "lax"
        assert not owner["secure"]  # plain-HTTP development on 127.0.0.1 only
    finally:
        await client.aclose()
