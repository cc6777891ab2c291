"""`plugpay demo`'s stand-in provider: the signed-in path works offline, through the
same OpenID Connect code as any provider, and the stand-in checks PKCE and its client."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, urlsplit

import httpx

from conftest import make_settings
from plugpay.app import create_app
from plugpay.config import OidcProvider
from plugpay.sim.identity import DemoIdentityProvider
from support.server import free_port, start_server


async def test_the_demo_signs_in_with_its_stand_in_provider(sqlite_url: str) -> None:
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    identity = DemoIdentityProvider(public_url)
    provider = OidcProvider(
        "demo", identity.issuer, identity.client_id, identity.client_secret, "Demo ID"
    )
    settings = make_settings(sqlite_url, public_url=public_url, oidc_providers=(provider,))
    server = await start_server(
        settings, port=port, app=create_app(settings, extra_routes=[identity.router()])
    )
    try:
        async with httpx.AsyncClient(base_url=public_url, timeout=20) as browser:
            authorize = (await browser.get("/login/demo")).headers["location"]
            chooser = await browser.get(authorize)
            assert chooser.status_code == 200 and "Alex Demo" in chooser.text
            approve = re.search(r'href="(/demo-id/approve\?[^"]+)"', chooser.text)
            assert approve is not None
            back = (await browser.get(approve.group(1).replace("&amp;", "&"))).headers["location"]
            code = parse_qs(urlsplit(back).query)["code"][0]
            done = await browser.get(back)
            assert done.status_code == 303 and done.headers["location"] == "/me"
            me = await browser.get("/me")
            assert "Alex Demo" in me.text and "Sign out" in me.text

            # The stand-in refuses a code used already and a wrong client secret, and
            # takes no authorization request without PKCE.
            basic = base64.b64encode(
                f"{identity.client_id}:{identity.client_secret}".encode()
            ).decode()
            token = {"grant_type": "authorization_code", "redirect_uri": identity.redirect_uri()}
            reused = await browser.post(
                "/demo-id/token",
                data={**token, "code": code, "code_verifier": "x" * 43},
                headers={"Authorization": f"Basic {basic}"},
            )
            assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
            wrong_secret = await browser.post(
                "/demo-id/token",
                data={**token, "code": "c"},
                headers={"Authorization": "Basic " + base64.b64encode(b"plugpay-demo:x").decode()},
            )
            assert wrong_secret.status_code == 401
            no_pkce = await browser.get(
                "/demo-id/authorize",
                params={
                    "client_id": identity.client_id,
                    "redirect_uri": identity.redirect_uri(),
                    "response_type": "code",
                },
            )
            assert no_pkce.status_code == 400 and "PKCE" in no_pkce.text
    finally:
        await server.stop()
