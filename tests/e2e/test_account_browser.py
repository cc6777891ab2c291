"""A driver with an account, in headless Chromium at phone size: sign in at a real
OpenID provider (npm oidc-provider, its own login and consent pages), save a demo
card, start with one tap, find the charge on the account page, sign out.
Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_settings
from peers.oidc_provider import OidcPeerError, running_provider
from plugpay.config import OidcProvider
from support.chromium import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from support.driver import demo_site, running_sim, stop_sim
from support.peers import skip_missing_peer
from support.server import RunningServer, free_port, start_server

PHONE = {"width": 390, "height": 844}
CLIENT = {"client_id": "plugpay-e2e", "client_secret": "secret-of-the-e2e-client"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture
async def site(sqlite_url: str) -> AsyncIterator[RunningServer]:
    port = free_port()
    client = {**CLIENT, "redirect_uris": [f"http://127.0.0.1:{port}/auth/op/callback"]}
    try:
        provider = running_provider([client])
        issuer = await provider.__aenter__()
    except OidcPeerError as exc:
        skip_missing_peer("oidc-provider (Node.js and npm)", str(exc))
    settings = make_settings(
        sqlite_url,
        public_url=f"http://127.0.0.1:{port}",
        oidc_providers=(
            OidcProvider("op", issuer, CLIENT["client_id"], CLIENT["client_secret"], "Test ID"),
        ),
    )
    server = await start_server(settings, port=port)
    await demo_site(server)
    sim, task = await running_sim(server, power_kw=50.0, meter_interval=0.25)
    try:
        yield server
    finally:
        await stop_sim(sim, task)
        await server.stop()
        await provider.__aexit__(None, None, None)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def snap(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("lang", ["en", "de"])
async def test_sign_in_save_a_card_start_with_one_tap_and_sign_out(
    site: RunningServer, browser: Any, lang: str
) -> None:
    context = await browser.new_context(
        viewport=PHONE, locale=lang, extra_http_headers={"Accept-Language": lang}
    )
    page = await context.new_page()
    words = {
        "en": ("Sign in with Test ID", "Your account", "Start with Visa", "Sign in"),
        "de": ("Mit Test ID anmelden", "Ihr Konto", "Mit Visa", "Anmelden"),
    }[lang]
    try:
        await page.goto(f"{site.http_url}/c/CP-1/1")
        await page.click("header .header-link")  # "Sign in", top right
        await snap(page, f"account-{lang}-1-sign-in")
        await page.click(f"text={words[0]}")
        # The provider's own pages (another origin): log in, then consent.
        await page.fill('input[name="login"]', "dana")
        await page.fill('input[name="password"]', "any")
        await page.click('button[type="submit"]')
        await page.click('button[type="submit"]')  # consent
        await page.wait_for_url(f"{site.http_url}/c/CP-1/1")  # back where the driver was
        await page.goto(f"{site.http_url}/me")
        assert "Driver dana" in await page.inner_text("main")
        assert words[1] in await page.inner_text("header")
        await snap(page, f"account-{lang}-2-me")

        await page.goto(f"{site.http_url}/me/cards")
        await page.click("#add-card")
        await page.click("#save-card")  # the demo's card that approves
        await page.wait_for_url(f"{site.http_url}/me/cards?saved=1")
        await snap(page, f"account-{lang}-3-cards")

        await page.goto(f"{site.http_url}/c/CP-1/1")
        start = page.locator("#start-saved")
        assert words[2] in await start.inner_text()
        await snap(page, f"account-{lang}-4-one-tap")
        await start.click()
        await page.wait_for_url(f"{site.http_url}/s/**")
        await page.wait_for_selector("#cost")
        await snap(page, f"account-{lang}-5-charging")
        session_id = page.url.rsplit("/", 1)[-1]

        await page.goto(f"{site.http_url}/me")
        assert await page.locator(f'a[href="/s/{session_id}"]').count() == 1
        await page.click('form[action="/logout"] button')
        await page.wait_for_url(f"{site.http_url}/")
        assert words[3] in await page.inner_text("header")
        # Signed out, the account's charge does not open in this browser.
        response = await page.goto(f"{site.http_url}/s/{session_id}")
        assert response is not None and response.status == 404
    finally:
        await context.close()
