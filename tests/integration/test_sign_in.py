"""Drivers' sign-in with OpenID Connect, against a real provider (panva/oidc-provider)
and, for the ID-token checks a real provider never fails, a hostile one.

Every refusal is checked to have changed nothing: no account, no login, no
cookie that signs anyone in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from conftest import make_settings
from peers.oidc_provider import OidcPeerError, provider_sign_in, running_provider
from plugpay.config import OidcProvider
from plugpay.store import tables as t
from support.driver import Phone, csrf_of, demo_site, running_sim, stop_sim
from support.oidc import MODES, HostileProvider
from support.peers import skip_missing_peer
from support.server import RunningServer, free_port, start_server

CLIENT_ID = "plugpay-test"
CLIENT_SECRET = "a-client-secret-of-the-test-provider"


@dataclass
class SignInSite:
    server: RunningServer
    issuer: str

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.server.http_url, timeout=20)

    async def count(self, table: t.Table) -> int:  # type: ignore[name-defined]
        async with self.server.runtime.db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _site(database_url: str, provider: str, issuer: str, port: int) -> RunningServer:
    settings = make_settings(
        database_url,
        public_url=f"http://127.0.0.1:{port}",
        oidc_providers=(OidcProvider(provider, issuer, CLIENT_ID, CLIENT_SECRET, title="Test ID"),),
    )
    return await start_server(settings, port=port)


@pytest.fixture
async def real(database_url: str) -> AsyncIterator[SignInSite]:
    port = free_port()
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://127.0.0.1:{port}/auth/op/callback"],
    }
    try:
        provider = running_provider([client])
        issuer = await provider.__aenter__()
    except OidcPeerError as exc:
        skip_missing_peer("oidc-provider (Node.js and npm)", str(exc))
    server = await _site(database_url, "op", issuer, port)
    try:
        yield SignInSite(server, issuer)
    finally:
        await server.stop()
        await provider.__aexit__(None, None, None)


@pytest.fixture
async def hostile(sqlite_url: str) -> AsyncIterator[tuple[SignInSite, HostileProvider]]:
    provider = HostileProvider(CLIENT_ID, CLIENT_SECRET)
    await provider.start()
    port = free_port()
    server = await _site(sqlite_url, "evil", provider.issuer, port)
    try:
        yield SignInSite(server, provider.issuer), provider
    finally:
        await server.stop()
        await provider.close()


async def begin(browser: httpx.AsyncClient, provider: str = "op", next_: str | None = None) -> str:
    response = await browser.get(
        f"/login/{provider}", params={"next": next_} if next_ is not None else None
    )
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert "plugpay_sign_in=" in cookie and "HttpOnly" in cookie
    assert f"Path=/auth/{provider}/" in cookie
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["state"] and query["nonce"] and query["client_id"] == [CLIENT_ID]
    return location


def login_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("plugpay_login=") and "Max-Age=0" not in header:
            return header
    return None


async def test_sign_in_makes_one_account_claims_the_guest_session_and_signs_out(
    real: SignInSite,
) -> None:
    charger_id, _ = await demo_site(real.server)
    sim, task = await running_sim(real.server)
    phone = Phone(real.server)
    try:
        started = await phone.start(charger_id, 1)
        session_id = started.headers["location"].rsplit("/", 1)[-1]
        # Signed out: the sign-in choices.
        choices = await phone.client.get("/me")
        assert choices.status_code == 200 and "Sign in with Test ID" in choices.text

        back = await provider_sign_in(await begin(phone.client, next_="/"), login="alice")
        assert back.startswith(f"{real.server.http_url}/auth/op/callback?")
        done = await phone.client.get(back)
        assert done.status_code == 303 and done.headers["location"] == "/"
        cookie = login_cookie(done)
        assert (
            cookie is not None
            and "HttpOnly" in cookie
            and "SameSite=lax" in cookie.replace("Lax", "lax")
        )
        me = await phone.client.get("/me")
        assert (
            me.status_code == 200 and "Driver alice" in me.text and "alice@example.org" in me.text
        )
        assert f"/pay/{session_id}" in me.text  # the guest's session is the account's now
        record = await real.server.runtime.session_store.get(session_id)
        assert record is not None and record.account_id is not None
        assert await real.count(t.accounts) == 1 and await real.count(t.account_logins) == 1

        # The same person again, from a second browser: the same account, a new login,
        # and the claimed session opens there too.
        async with real.browser() as other:
            again = await other.get(await provider_sign_in(await begin(other), login="alice"))
            assert again.status_code == 303 and again.headers["location"] == "/me"
            assert await real.count(t.accounts) == 1 and await real.count(t.account_logins) == 2
            assert (await other.get(f"/pay/{session_id}")).status_code == 200

        # Signing in again in the same browser replaces its login (no fixation).
        first_token = phone.client.cookies.get("plugpay_login")
        renewed = await phone.client.get(
            await provider_sign_in(await begin(phone.client), login="alice")
        )
        assert renewed.status_code == 303
        assert phone.client.cookies.get("plugpay_login") not in (None, first_token)
        assert await real.count(t.account_logins) == 2

        page = await phone.client.get("/me")
        out = await phone.client.post("/logout", data={"_csrf_token": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert await real.count(t.account_logins) == 1
        # Signed out, this browser no longer opens the account's session.
        assert (await phone.client.get(f"/pay/{session_id}")).status_code == 404
        assert "Sign in with Test ID" in (await phone.client.get("/me")).text
    finally:
        await phone.close()
        await stop_sim(sim, task)


async def test_a_replayed_answer_signs_nobody_in(real: SignInSite) -> None:
    async with real.browser() as browser:
        back = await provider_sign_in(await begin(browser), login="bob")
        assert (await browser.get(back)).status_code == 303
        assert await real.count(t.account_logins) == 1
        # The same answer again, with the state cookie put back: the attempt is gone.
        state = parse_qs(urlsplit(back).query)["state"][0]
        browser.cookies.set("plugpay_sign_in", state, path="/auth/op/")
        browser.cookies.delete("plugpay_login")
        replayed = await browser.get(back)
        assert replayed.status_code == 400 and login_cookie(replayed) is None
        assert await real.count(t.account_logins) == 1


async def test_a_code_with_another_attempts_verifier_is_refused_by_pkce(real: SignInSite) -> None:
    """An attacker's code injected into the driver's sign-in: the provider refuses it,
    because the code was issued for another PKCE challenge."""
    async with real.browser() as driver, real.browser() as attacker:
        await begin(driver)  # the driver's attempt, with its verifier
        driver_state = driver.cookies.get("plugpay_sign_in")
        stolen = await provider_sign_in(await begin(attacker), login="mallory")
        code = parse_qs(urlsplit(stolen).query)["code"][0]
        injected = await driver.get(
            "/auth/op/callback", params={"code": code, "state": driver_state}
        )
        assert injected.status_code == 400 and login_cookie(injected) is None
        assert await real.count(t.accounts) == 0 and await real.count(t.account_logins) == 0


async def test_an_answer_in_another_browser_is_refused(real: SignInSite) -> None:
    async with real.browser() as driver, real.browser() as other:
        back = await provider_sign_in(await begin(driver), login="carol")
        refused = await other.get(back)  # no state cookie: not the browser that began
        assert refused.status_code == 400 and login_cookie(refused) is None
        assert await real.count(t.accounts) == 0
        # The attempt is still the driver's to finish.
        assert (await driver.get(back)).status_code == 303


async def test_cancelling_at_the_provider_changes_nothing(real: SignInSite) -> None:
    async with real.browser() as browser:
        back = await provider_sign_in(await begin(browser), consent=False)
        assert "error=access_denied" in back
        refused = await browser.get(back)
        assert refused.status_code == 400 and "Sign-in did not work" in refused.text
        assert await real.count(t.accounts) == 0 and await real.count(t.account_logins) == 0


async def test_next_goes_only_to_a_path_of_this_site(real: SignInSite) -> None:
    async with real.browser() as browser:
        back = await provider_sign_in(await begin(browser, next_="//evil.example/x"))
        done = await browser.get(back)
        assert done.status_code == 303 and done.headers["location"] == "/me"


async def test_unknown_provider_is_not_found(real: SignInSite) -> None:
    async with real.browser() as browser:
        assert (await browser.get("/login/nobody")).status_code == 404
        assert (await browser.get("/auth/nobody/callback?code=x&state=y")).status_code == 404


async def _hostile_sign_in(site: SignInSite) -> httpx.Response:
    async with site.browser() as browser:
        location = await begin(browser, provider="evil")
        async with httpx.AsyncClient() as provider_browser:
            back = (await provider_browser.get(location)).headers["location"]
        return await browser.get(back)


async def test_the_hostile_provider_signs_in_when_its_token_is_right(
    hostile: tuple[SignInSite, HostileProvider],
) -> None:
    site, provider = hostile
    done = await _hostile_sign_in(site)
    assert done.status_code == 303 and login_cookie(done) is not None
    assert await site.count(t.accounts) == 1 and provider.token_requests == 1


@pytest.mark.parametrize("mode", [m for m in MODES if m != "good"])
async def test_a_bad_id_token_signs_nobody_in(
    hostile: tuple[SignInSite, HostileProvider], mode: str
) -> None:
    site, provider = hostile
    provider.mode = mode
    refused = await _hostile_sign_in(site)
    assert refused.status_code == 400, (mode, refused.status_code)
    assert login_cookie(refused) is None
    assert provider.token_requests == 1  # the code was exchanged; its token was refused
    assert await site.count(t.accounts) == 0 and await site.count(t.account_logins) == 0


async def test_a_provider_that_is_down_gets_a_clear_page(sqlite_url: str) -> None:
    port = free_port()
    server = await _site(sqlite_url, "gone", f"http://127.0.0.1:{free_port()}", port)
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as browser:
            response = await browser.get("/login/gone")
            assert response.status_code == 503
            assert "does not answer" in response.text
    finally:
        await server.stop()
