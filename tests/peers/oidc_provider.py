"""Run the real OpenID provider (tests/peers/oidc/provider.mjs, panva/oidc-provider).

``running_provider(clients)`` starts it on a free loopback port and yields its
issuer URL; ``provider_sign_in(authorize_url)`` plays the driver at the
provider's development login and consent pages and returns where the provider
sends the browser back (the relying party's callback with code and state, or
with an error).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from peers.npm import npm_ci

PEER_DIR = Path(__file__).resolve().parent / "oidc"
SCRIPT = PEER_DIR / "provider.mjs"


class OidcPeerError(RuntimeError):
    """The provider could not be installed or started."""


def ensure_oidc_provider_installed() -> str:
    """Install the locked npm dependencies once; return the path of `node`."""
    return npm_ci(PEER_DIR, "oidc-provider", OidcPeerError, "the oidc-provider test peer")


@asynccontextmanager
async def running_provider(clients: list[dict[str, Any]]) -> AsyncIterator[str]:
    node = ensure_oidc_provider_installed()
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        "--port",
        "0",
        "--clients",
        json.dumps(clients),
        cwd=PEER_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        if not line:
            raise OidcPeerError("oidc-provider exited before it listened")
        yield str(json.loads(line)["issuer"])
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def provider_sign_in(
    authorize_url: str, login: str = "driver-1", *, consent: bool = True
) -> str:
    """The driver at the provider: log in as ``login``, consent (or abort), and
    return the URL the provider redirects the browser back to."""
    async with httpx.AsyncClient(timeout=10) as browser:
        url = authorize_url
        for _ in range(12):
            response = await browser.get(url)
            if response.status_code in (302, 303):
                location = urljoin(url, response.headers["location"])
                if "/interaction/" not in location and not location.startswith(
                    str(response.url.copy_with(path="/", query=None, fragment=None))
                ):
                    return location  # back to the relying party
                url = location
                continue
            assert response.status_code == 200, response.text
            uid = url.rstrip("/").rsplit("/", 1)[-1]
            base = str(response.url.copy_with(path="/", query=None, fragment=None))
            if 'name="login"' in response.text:
                data = {"prompt": "login", "login": login, "password": "any"}
            elif consent:
                data = {"prompt": "consent"}
            else:
                aborted = await browser.get(urljoin(base, f"interaction/{uid}/abort"))
                url = urljoin(base, aborted.headers["location"])
                continue
            submitted = await browser.post(urljoin(base, f"interaction/{uid}"), data=data)
            assert submitted.status_code in (302, 303), submitted.text
            url = urljoin(base, submitted.headers["location"])
        raise AssertionError(f"the provider never sent the browser back (last {url})")
