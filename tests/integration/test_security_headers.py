"""Every HTTP response carries the security headers, whichever layer made it: pages,
the router's 404 and 405, the CSRF 403, error pages, static files, redirects and event
streams. HSTS only for a public https origin; the payment page may open pop-ups."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from conftest import make_settings
from plugpay.sim.charger import VirtualCharger
from support.driver import Phone, csrf_of, demo_site, stop_sim
from support.server import RunningServer, start_server
from support.sessions import charger, run_charger, session_id_of

BASELINE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
HSTS = "max-age=63072000; includeSubDomains"


def assert_secured(response: httpx.Response, what: str) -> None:
    headers = response.headers
    for name, value in BASELINE.items():
        assert headers.get(name) == value, f"{what}: {name} is {headers.get(name)!r}"
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"{what}: {csp!r}"
    policy = headers.get("permissions-policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()"):
        assert feature in policy, f"{what}: {policy!r}"
    assert 'payment=(self "https://js.stripe.com"' in policy, f"{what}: {policy!r}"
    assert headers.get("cross-origin-opener-policy", "").startswith("same-origin"), what
    assert headers.get_list("content-security-policy") == [csp], f"{what}: CSP twice"


@pytest.fixture
async def sim(server: RunningServer) -> AsyncIterator[VirtualCharger]:
    await demo_site(server)
    sim = charger(server, meter_interval=10.0)
    task = await run_charger(server, sim)
    yield sim
    await stop_sim(sim, task)


@pytest.fixture
async def phone(server: RunningServer) -> AsyncIterator[Phone]:
    phone = Phone(server)
    yield phone
    await phone.close()


async def test_every_kind_of_response_carries_the_security_headers(
    server: RunningServer, sim: VirtualCharger, phone: Phone
) -> None:
    client = phone.client
    page = await client.get("/c/CP-1/1")
    seen: dict[str, httpx.Response] = {"page": page}
    seen["unknown page (404)"] = await client.get("/no/such/page")
    seen["unknown connector (404)"] = await client.get("/c/NOPE/1")
    seen["unknown API path (404)"] = await client.get("/api/nothing")
    seen["wrong method (405)"] = await client.post("/healthz")
    seen["no CSRF token (403)"] = await client.post("/c/CP-1/1/start", data={})
    seen["static file"] = await client.get("/static/css/app.css")
    seen["service worker"] = await client.get("/sw.js")
    seen["manifest"] = await client.get("/manifest.webmanifest")
    seen["offline page"] = await client.get("/offline.html")
    seen["JSON"] = await client.get("/healthz")
    seen["OCPP over plain HTTP (426)"] = await client.get("/ocpp/CP-1")
    start = await client.post("/c/CP-1/1/start", data={"_csrf_token": csrf_of(page.text)})
    seen["redirect (303)"] = start
    session_id = session_id_of(start)
    pay = await client.get(f"/pay/{session_id}")
    seen["payment page"] = pay
    seen["bad input (400)"] = await client.post(
        f"/pay/{session_id}/demo", data={"_csrf_token": csrf_of(pay.text), "card": "bogus"}
    )
    async with client.stream("GET", f"/s/{session_id}/events") as events:
        seen["event stream"] = events

    expected = {
        "unknown page (404)": 404,
        "unknown connector (404)": 404,
        "unknown API path (404)": 404,
        "wrong method (405)": 405,
        "no CSRF token (403)": 403,
        "OCPP over plain HTTP (426)": 426,
        "redirect (303)": 303,
        "bad input (400)": 400,
    }
    for what, response in seen.items():
        assert response.status_code == expected.get(what, 200), (what, response.status_code)
        assert_secured(response, what)
    assert seen["event stream"].headers["content-type"].startswith("text/event-stream")


async def test_a_server_error_carries_the_security_headers(server: RunningServer) -> None:
    async def broken() -> bool:
        raise RuntimeError("the readiness check itself failed")

    server.server.config.app.state.ready_check = broken
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        response = await client.get("/readyz")
    assert response.status_code == 500
    assert_secured(response, "server error (500)")


async def test_the_payment_page_may_open_popups_and_every_other_page_may_not(
    server: RunningServer, sim: VirtualCharger, phone: Phone
) -> None:
    session_id = session_id_of(await phone.start("CP-1", 1))
    pay = await phone.client.get(f"/pay/{session_id}")
    # Google Pay outside Chrome reports back to its opener from a pop-up.
    assert pay.headers["cross-origin-opener-policy"] == "same-origin-allow-popups"
    for path in ("/c/CP-1/1", f"/s/{session_id}", "/", "/no/such/page"):
        response = await phone.client.get(path)
        assert response.headers["cross-origin-opener-policy"] == "same-origin", path


async def test_a_handler_that_sets_its_own_header_keeps_it(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        worker = await client.get("/sw.js")
    # The service worker's own headers survive next to the added ones.
    assert worker.headers["service-worker-allowed"] == "/"
    assert worker.headers["cache-control"] == "no-cache"
    assert_secured(worker, "service worker")


async def test_no_hsts_on_plain_http_localhost(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as client:
        for path in ("/", "/no/such/page", "/static/css/app.css"):
            assert "strict-transport-security" not in (await client.get(path)).headers


@pytest.mark.parametrize(
    ("public_url", "hsts"),
    [
        ("https://plugpay.example", True),
        ("https://localhost:8443", False),
        ("https://127.0.0.1:8443", False),
        ("https://[::1]:8443", False),
        ("http://plugpay.example", False),
    ],
)
async def test_hsts_only_for_a_public_https_origin(
    database_url: str, public_url: str, hsts: bool
) -> None:
    server = await start_server(make_settings(database_url, public_url=public_url))
    try:
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            for path in ("/", "/no/such/page", "/static/css/app.css", "/healthz"):
                response = await client.get(path)
                assert response.headers.get("strict-transport-security") == (
                    HSTS if hsts else None
                ), (public_url, path)
                assert_secured(response, f"{public_url}{path}")
            refused = await client.post("/c/CP-1/1/start", data={})
            assert refused.status_code == 403
            assert ("strict-transport-security" in refused.headers) is hsts
    finally:
        await server.stop()
