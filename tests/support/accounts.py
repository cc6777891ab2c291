"""A server whose drivers sign in through the hostile provider in its ``good`` mode
(tests/support/oidc.py): a correct ID token for whichever subject the test names.
The sign-in itself is tested in test_sign_in.py; this is for what comes after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import select

from conftest import make_settings
from plugpay.app import create_app
from plugpay.config import OidcProvider
from plugpay.services.ports import PushSender
from plugpay.store import tables as t
from support.oidc import HostileProvider
from support.server import RunningServer, free_port, start_server

CLIENT_ID, CLIENT_SECRET = "plugpay-test", "secret-of-the-test-provider"


@dataclass
class AccountSite:
    server: RunningServer
    provider: HostileProvider

    async def signed_in(self, subject: str, lang: str = "en") -> httpx.AsyncClient:
        """A browser signed in as ``subject`` (the caller closes it)."""
        browser = httpx.AsyncClient(
            base_url=self.server.http_url, timeout=20, headers={"Accept-Language": lang}
        )
        self.provider.subject = subject
        location = (await browser.get("/login/id")).headers["location"]
        async with httpx.AsyncClient() as at_provider:
            back = (await at_provider.get(location)).headers["location"]
        done = await browser.get(back)
        assert done.status_code == 303, done.text
        return browser

    async def account_id(self, subject: str) -> int:
        async with self.server.runtime.db.connect() as conn:
            query = select(t.accounts.c.id).where(t.accounts.c.subject == subject)
            return int((await conn.execute(query)).scalar_one())


@asynccontextmanager
async def account_site(
    database_url: str,
    provider_groups: tuple[str, ...] = (),
    push: PushSender | None = None,
    **settings: object,
) -> AsyncIterator[AccountSite]:
    """``provider_groups``: the groups everyone signing in with the provider joins;
    ``push``: the Web Push sender (a test's, for a local push service)."""
    provider = HostileProvider(CLIENT_ID, CLIENT_SECRET)
    await provider.start()
    port = free_port()
    config = make_settings(
        database_url,
        public_url=f"http://127.0.0.1:{port}",
        oidc_providers=(
            OidcProvider("id", provider.issuer, CLIENT_ID, CLIENT_SECRET, "ID", provider_groups),
        ),
        **settings,
    )
    app = create_app(config, push=push) if push is not None else None
    server = await start_server(config, port=port, app=app)
    try:
        yield AccountSite(server, provider)
    finally:
        await server.stop()
        await provider.close()


async def save_card(browser: httpx.AsyncClient, card: str) -> None:
    """Save one of the demo provider's test cards on the signed-in browser's account."""
    from support.driver import csrf_of

    cards = await browser.get("/me/cards")
    new = await browser.post("/me/cards/new", data={"_csrf_token": csrf_of(cards.text)})
    setup = await browser.get(new.headers["location"])
    saved = await browser.post(
        f"{new.headers['location']}/demo", data={"_csrf_token": csrf_of(setup.text), "card": card}
    )
    assert saved.headers["location"] == "/me/cards?saved=1"


async def link_rfid(browser: httpx.AsyncClient, tag: str) -> httpx.Response:
    """Link an RFID card on /me/rfid; the form's answer."""
    from support.driver import csrf_of

    page = await browser.get("/me/rfid")
    return await browser.post(
        "/me/rfid", data={"_csrf_token": csrf_of(page.text), "tag": tag, "label": "Work card"}
    )
