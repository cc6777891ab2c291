"""Stripe API calls per completed session, counted at the wire.

Run as a script in its own process::

    python stripe_calls.py --sessions 3 --workdir DIR

It starts localstripe (``tests/support/localstripe.py``) with a recording
proxy in front of it, and the real app configured as an operator would
(``PLUGPAY_PAYMENTS=stripe``, the keys, ``PLUGPAY_STRIPE_API_BASE`` pointing at
the proxy) under uvicorn on a loopback port, with a migrated SQLite file in
DIR and one virtual charger (``plugpay.sim``, 1.6, 50 kW) with one connector
per session. Each session is then played one after the other, as
``tests/integration/test_stripe_flow.py`` plays it: the phone starts it, loads
the payment page, the browser confirms the PaymentIntent with ``pm_card_visa``
straight at localstripe (as Stripe.js does; the proxy sees only the
server's requests), follows Stripe's redirect to ``/pay/{id}/return``, the
charge runs until it costs something, the phone stops it, and the session is
SETTLED (captured). Every request the server made to Stripe meanwhile is
that session's; ``StripeGateway.api_calls`` is read alongside as a cross-check.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's helpers: support.*
sys.path.insert(0, str(ROOT / "bench"))  # ocpp_ingest

from ocpp_ingest.servers import die_with_parent  # noqa: E402

CLIENT_SECRET = re.compile(r'data-client-secret="([^"]+)"')
INTENT = re.compile(r"^/v1/payment_intents/[^/]+")


def endpoint(method: str, path: str) -> str:
    """``GET /v1/payment_intents/{id}``: one name per endpoint, whatever the intent."""
    return f"{method} {INTENT.sub('/v1/payment_intents/{id}', path.split('?', 1)[0])}"


async def play(base_url: str, workdir: Path, sessions: int) -> dict[str, Any]:
    from plugpay.config import load_settings
    from plugpay.notify.webpush import generate_vapid_private_key
    from plugpay.payments.stripe_gateway import StripeGateway
    from plugpay.store.migrate import upgrade_async
    from support.driver import demo_site, running_sim, stop_sim
    from support.localstripe import RecordingProxy
    from support.server import start_server
    from support.stripe_app import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, StripeBrowser

    proxy = RecordingProxy(base_url)
    await proxy.start()
    database_url = f"sqlite+aiosqlite:///{workdir / 'stripe.db'}"
    await upgrade_async(database_url)
    settings = load_settings(
        {
            "PLUGPAY_DATABASE_URL": database_url,
            "PLUGPAY_SECRET_KEY": "bench-" + "s" * 40,
            "PLUGPAY_PAYMENTS": "stripe",
            "PLUGPAY_STRIPE_SECRET_KEY": SECRET_KEY,
            "PLUGPAY_STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "PLUGPAY_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PLUGPAY_STRIPE_API_BASE": proxy.url,
            "PLUGPAY_VAPID_PRIVATE_KEY": generate_vapid_private_key(),
            "PLUGPAY_OCPP_CALL_TIMEOUT": "5",
        },
        dotenv=None,
    )
    server = await start_server(settings)
    browser = StripeBrowser(base_url)
    results: list[dict[str, Any]] = []
    try:
        gateway = server.runtime.payments
        assert isinstance(gateway, StripeGateway)
        await demo_site(server, tariff="simple-per-kwh.json", connectors=sessions)
        sim, task = await running_sim(
            server, "1.6", power_kw=50.0, meter_interval=0.2, connectors=sessions
        )
        try:
            for connector in range(1, sessions + 1):
                results.append(await one_session(server, proxy, browser, gateway, connector))
        finally:
            await stop_sim(sim, task)
    finally:
        await browser.close()
        await server.stop()
        await proxy.stop()
    return {"sessions": results}


async def one_session(
    server: Any, proxy: Any, browser: Any, gateway: Any, connector: int
) -> dict[str, Any]:
    from support.driver import Phone, eventually

    phone = Phone(server)
    before, counted = len(proxy.requests), gateway.api_calls
    try:
        started = await phone.start("CP-1", connector)
        location = started.headers.get("location", "")
        if started.status_code != 303 or not location.startswith("/pay/"):
            return {"completed": False, "problem": f"start: {started.status_code} {location}"}
        session_id = location.rsplit("/", 1)[-1]
        page = await phone.client.get(location)  # the payment page, with the client secret
        match = CLIENT_SECRET.search(page.text)
        if page.status_code != 200 or match is None:
            return {"completed": False, "problem": f"payment page: {page.status_code}"}
        ref = match.group(1).split("_secret_")[0]
        await browser.confirm(ref)  # Stripe.js with pm_card_visa, straight to localstripe
        back = await phone.client.get(f"/pay/{session_id}/return")
        if back.headers.get("location") != f"/s/{session_id}":
            return {"completed": False, "problem": f"return: {back.headers.get('location')}"}

        async def state(*wanted: str, cost: bool = False) -> bool:
            record = await server.runtime.session_store.get(session_id)
            return (
                record is not None
                and record.state in wanted
                and (not cost or record.cost_minor > 0)
            )

        await eventually(lambda: state("CHARGING", cost=True), timeout=30)
        await phone.stop(session_id)
        await eventually(lambda: state("SETTLED"), timeout=30)
        calls = [(r.method, r.path) for r in proxy.requests[before:]]
        return {
            "completed": True,
            "calls": [endpoint(m, p) for m, p in calls],
            "api_calls": gateway.api_calls - counted,
        }
    except AssertionError as exc:  # eventually(): not in time
        return {"completed": False, "problem": f"{type(exc).__name__} {exc}"}
    finally:
        await phone.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path.cwd())
    args = parser.parse_args()
    die_with_parent()
    from support.localstripe import run_localstripe

    with run_localstripe(args.workdir / "localstripe.log") as base_url:
        result = asyncio.run(play(base_url, args.workdir, args.sessions))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
