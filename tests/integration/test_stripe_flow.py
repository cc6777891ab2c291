"""The guest flow with PLUGPAY_PAYMENTS=stripe: the real app, the real Stripe SDK over
real sockets to localstripe, and a virtual charger over OCPP.

The test plays the driver's browser: it reads the publishable key and client secret
from the payment page, confirms the PaymentIntent on localstripe as Stripe.js
would, then follows Stripe's redirect to ``/pay/{id}/return``. Every request the
server makes to Stripe goes through a recording proxy, so the calls per completed
session are counted, not estimated.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe

from plugpay.payments.stripe_gateway import StripeGateway
from plugpay.services.ports import HoldRequest
from plugpay.services.session_moves import utcnow
from plugpay.sim.charger import VirtualCharger
from support.driver import Phone, demo_site, eventually, running_sim, stop_sim
from support.localstripe import RecordingProxy
from support.server import RunningServer
from support.sessions import force
from support.stripe_app import (
    CARD_DECLINED_ON_CHARGE,
    CARD_NEEDS_3DS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeBrowser,
    StripeCall,
    calls_of,
)

# The fixtures: localstripe, the recording proxy, the app, the browser.
pytest_plugins = ["support.stripe_fixtures"]

# The SDK's httpx client posts its form as raw bytes through ``data=``.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

FORM = re.compile(r'<form id="payment-form"[^>]*>', re.S)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STRIPE_JS_STANDIN = Path(__file__).resolve().parents[1] / "support" / "stripe_js_standin.js"


def form_data(page: str) -> dict[str, str]:
    """The data-* attributes stripe-pay.js reads from #payment-form."""
    match = FORM.search(page)
    assert match, "the payment page has no Stripe form"
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', match.group(0))
    }


async def state_of(server: RunningServer, session_id: str) -> str:
    record = await server.runtime.session_store.get(session_id)
    assert record is not None
    return record.state


async def open_session(server: RunningServer, phone: Phone) -> tuple[str, dict[str, str]]:
    """Scan, press start, land on the payment page: (session id, the form's data)."""
    started = await phone.start("CP-1", 1)
    assert started.status_code == 303, started.text
    assert started.headers["location"].startswith("/pay/")
    session_id = started.headers["location"].rsplit("/", 1)[-1]
    page = await phone.client.get(f"/pay/{session_id}")
    assert page.status_code == 200
    assert '<script src="https://js.stripe.com/v3/"' in page.text
    assert '<script src="/static/js/stripe-pay.js"' in page.text
    for element in ("express-checkout", "payment-element", "payment-error"):
        assert f'id="{element}"' in page.text
    return session_id, form_data(page.text)


async def come_back(phone: Phone, session_id: str) -> str:
    """Stripe's redirect after confirmPayment: where the server sends the driver next."""
    response = await phone.client.get(f"/pay/{session_id}/return")
    assert response.status_code == 303
    return str(response.headers["location"])


async def charge_and_stop(server: RunningServer, phone: Phone, session_id: str) -> None:
    """The charge runs until it has cost something, then the driver stops it."""

    async def charging_with_cost() -> bool:
        record = await server.runtime.session_store.get(session_id)
        return record is not None and record.state == "CHARGING" and record.cost_minor > 0

    await eventually(charging_with_cost)
    assert (await phone.stop(session_id)).status_code == 303
    await eventually(lambda: settled(server, session_id))


async def settled(server: RunningServer, session_id: str) -> bool:
    return await state_of(server, session_id) == "SETTLED"


async def paid_charged_stopped(
    server: RunningServer, proxy: RecordingProxy, browser: StripeBrowser
) -> tuple[str, str, list[StripeCall]]:
    """One completed session paid by card: (session id, PaymentIntent id, the
    server's Stripe calls for it)."""
    phone = Phone(server)
    try:
        before = len(proxy.requests)
        session_id, form = await open_session(server, phone)
        record = await server.runtime.session_store.get(session_id)
        assert record is not None and record.payment_ref is not None
        ref = record.payment_ref
        assert form["publishable-key"] == PUBLISHABLE_KEY
        assert form["client-secret"].startswith(f"{ref}_secret_")
        assert form["return-url"] == f"/pay/{session_id}/return"
        assert form["lang"] == "en"

        await browser.confirm(ref)
        assert await come_back(phone, session_id) == f"/s/{session_id}"
        await charge_and_stop(server, phone, session_id)
        return session_id, ref, calls_of(proxy, before)
    finally:
        await phone.close()


@pytest.fixture
async def charger(stripe_server: RunningServer) -> AsyncIterator[VirtualCharger]:
    """CP-1 at 0.49 EUR/kWh incl. VAT, online and charging at 50 kW when asked."""
    await demo_site(stripe_server, tariff="simple-per-kwh.json")
    sim, task = await running_sim(stripe_server, "1.6", power_kw=50.0, meter_interval=0.2)
    yield sim
    await stop_sim(sim, task)


async def test_driver_pays_by_card_charges_and_exactly_the_final_price_is_captured(
    stripe_server: RunningServer,
    stripe_proxy: RecordingProxy,
    browser: StripeBrowser,
    charger: VirtualCharger,
) -> None:
    server = stripe_server
    session_id, ref, calls = await paid_charged_stopped(server, stripe_proxy, browser)

    record = await server.runtime.session_store.get(session_id)
    assert record is not None
    final, _, _ = await server.runtime.services.pricing.final_price(record)
    assert record.captured_minor == final.total_due().minor == record.cost_minor
    assert 0 < record.captured_minor < record.hold_minor
    assert (record.card_brand, record.card_last4) == ("visa", "4242")

    intent = await browser.intent(ref)
    assert (intent.status, intent.capture_method) == ("succeeded", "manual")
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.amount == record.hold_minor
    # localstripe books the released rest of the hold as a refund of the charge.
    assert charge.amount - charge.amount_refunded == record.captured_minor

    # Every call that changes money carries a key derived from the session; the
    # hold is read before the charge starts; nothing is captured twice.
    intent_path = f"/v1/payment_intents/{ref}"
    assert calls[0] == StripeCall("POST", "/v1/payment_intents", f"{session_id}:hold")
    assert calls[-1] == StripeCall("POST", f"{intent_path}/capture", f"{session_id}:capture")
    assert StripeCall("GET", intent_path, None) in calls[1:-1]
    assert {c.method for c in calls[1:-1]} == {"GET"}


async def test_a_completed_session_costs_the_server_at_most_three_stripe_calls(
    stripe_server: RunningServer,
    stripe_proxy: RecordingProxy,
    browser: StripeBrowser,
    charger: VirtualCharger,
) -> None:
    gateway = stripe_server.runtime.payments
    assert isinstance(gateway, StripeGateway)
    counted = gateway.api_calls

    session_id, ref, calls = await paid_charged_stopped(stripe_server, stripe_proxy, browser)

    assert gateway.api_calls - counted == len(calls)
    intent_path = f"/v1/payment_intents/{ref}"
    assert calls == [
        StripeCall("POST", "/v1/payment_intents", f"{session_id}:hold"),
        StripeCall("GET", intent_path, None),
        StripeCall("POST", f"{intent_path}/capture", f"{session_id}:capture"),
    ]


async def test_client_secret_of_a_hold_made_here_needs_no_call_to_stripe(
    stripe_proxy: RecordingProxy,
) -> None:
    """What the payment page needs to stay within the three calls (see the test above)."""
    here = StripeGateway(
        SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, stripe_proxy.url, localstripe=True
    )
    elsewhere = StripeGateway(
        SECRET_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, stripe_proxy.url, localstripe=True
    )
    try:
        hold = await here.create_hold(HoldRequest("s-1", 5000, "EUR", "test", "s-1:hold"))
        made = len(stripe_proxy.requests)

        assert await here.client_secret(hold.ref) == hold.client_secret
        assert len(stripe_proxy.requests) == made
        # Another instance (or this one after a restart) reads the intent once.
        assert await elsewhere.client_secret(hold.ref) == hold.client_secret
        assert await elsewhere.client_secret(hold.ref) == hold.client_secret
        assert calls_of(stripe_proxy, made) == [
            StripeCall("GET", f"/v1/payment_intents/{hold.ref}", None)
        ]
    finally:
        await here.close()
        await elsewhere.close()


async def test_card_that_needs_3d_secure_keeps_the_driver_on_the_payment_page_until_verified(
    stripe_server: RunningServer, browser: StripeBrowser, charger: VirtualCharger
) -> None:
    phone = Phone(stripe_server)
    try:
        session_id, form = await open_session(stripe_server, phone)
        ref = form["client-secret"].split("_secret_")[0]
        await browser.confirm(ref, await browser.card(CARD_NEEDS_3DS))

        # The driver came back without passing the bank's check (closed it, say).
        assert await come_back(phone, session_id) == f"/pay/{session_id}?auth=1"
        page = await phone.client.get(f"/pay/{session_id}?auth=1")
        assert page.status_code == 200
        assert form_data(page.text)["client-secret"] == form["client-secret"]
        assert await state_of(stripe_server, session_id) == "CREATED"
        assert all(c.transaction is None for c in charger.connectors.values())

        # Paying again opens the bank's check; passed, the charge starts.
        await browser.authenticate(ref, form["client-secret"], success=True)
        assert await come_back(phone, session_id) == f"/s/{session_id}"
        await eventually(lambda: charging(stripe_server, session_id))
    finally:
        await phone.close()


async def test_payment_page_asks_the_driver_to_confirm_with_the_bank(
    stripe_server: RunningServer, browser: StripeBrowser, charger: VirtualCharger
) -> None:
    phone = Phone(stripe_server)
    try:
        session_id, form = await open_session(stripe_server, phone)
        ref = form["client-secret"].split("_secret_")[0]
        await browser.confirm(ref, await browser.card(CARD_NEEDS_3DS))
        location = await come_back(phone, session_id)

        page = await phone.client.get(location)

        assert "Your bank needs you to confirm this payment." in html.unescape(page.text)
    finally:
        await phone.close()


async def test_declined_card_is_told_in_plain_words_and_the_connector_is_freed_on_cancel(
    stripe_server: RunningServer,
    stripe_proxy: RecordingProxy,
    browser: StripeBrowser,
    charger: VirtualCharger,
) -> None:
    phone, next_driver = Phone(stripe_server), Phone(stripe_server)
    try:
        session_id, form = await open_session(stripe_server, phone)
        ref = form["client-secret"].split("_secret_")[0]
        with pytest.raises(stripe.CardError) as declined:
            await browser.confirm(ref, await browser.card(CARD_DECLINED_ON_CHARGE))
        assert declined.value.code == "card_declined"  # Stripe.js shows its message

        location = await come_back(phone, session_id)
        assert location.startswith(f"/pay/{session_id}?error=")
        page = await phone.client.get(location)
        assert page.status_code == 200
        assert "Your card was declined." in html.unescape(page.text)
        # The same form and hold stay on the page, for another card.
        assert form_data(page.text)["client-secret"] == form["client-secret"]
        assert await state_of(stripe_server, session_id) == "CREATED"
        assert all(c.transaction is None for c in charger.connectors.values())

        # Connector 1 stays reserved for this driver while they may pay ...
        reservations = stripe_server.runtime.services.reservations
        assert (await reservations.connector("CP-1", 1)).availability == "occupied"

        # ... until the reservation runs out: the session is canceled, the hold released.
        before = len(stripe_proxy.requests)
        an_hour_ago = utcnow() - timedelta(hours=1)
        await force(stripe_server, session_id, created_at=an_hour_ago, deadline_at=an_hour_ago)

        async def canceled() -> bool:
            return (await browser.intent(ref)).status == "canceled"

        await eventually(canceled)
        assert await state_of(stripe_server, session_id) == "CANCELED"
        assert StripeCall(
            "POST", f"/v1/payment_intents/{ref}/cancel", f"{session_id}:release"
        ) in calls_of(stripe_proxy, before)
        assert (await reservations.connector("CP-1", 1)).availability == "available"
        freed = await next_driver.start("CP-1", 1)
        assert freed.headers["location"].startswith("/pay/")
    finally:
        await phone.close()
        await next_driver.close()


async def test_session_that_ends_at_zero_energy_releases_the_hold_instead_of_capturing(
    stripe_server: RunningServer, stripe_proxy: RecordingProxy, browser: StripeBrowser
) -> None:
    await demo_site(stripe_server, tariff="simple-per-kwh.json")
    sim, task = await running_sim(stripe_server, "1.6", power_kw=0.0, meter_interval=0.2)
    phone = Phone(stripe_server)
    try:
        before = len(stripe_proxy.requests)
        session_id, form = await open_session(stripe_server, phone)
        ref = form["client-secret"].split("_secret_")[0]
        await browser.confirm(ref)
        assert await come_back(phone, session_id) == f"/s/{session_id}"

        async def charging_with_readings() -> bool:
            record = await stripe_server.runtime.session_store.get(session_id)
            return record is not None and record.state == "CHARGING" and record.power_w == 0

        await eventually(charging_with_readings)
        assert (await phone.stop(session_id)).status_code == 303
        await eventually(lambda: settled(stripe_server, session_id))

        record = await stripe_server.runtime.session_store.get(session_id)
        assert record is not None
        assert (record.energy_wh, record.cost_minor, record.captured_minor) == (0, 0, 0)
        assert (await browser.intent(ref)).status == "canceled"
        calls = calls_of(stripe_proxy, before)
        intent_path = f"/v1/payment_intents/{ref}"
        assert calls[-1] == StripeCall("POST", f"{intent_path}/cancel", f"{session_id}:release")
        assert not [c for c in calls if c.path.endswith("/capture")]
    finally:
        await phone.close()
        await stop_sim(sim, task)


async def charging(server: RunningServer, session_id: str) -> bool:
    return await state_of(server, session_id) == "CHARGING"


# -- the page's script, in Chromium, with a stand-in for Stripe.js ---------------------
@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
)
async def test_payment_script_confirms_with_the_return_url_and_shows_declines(
    stripe_server: RunningServer, browser: StripeBrowser, charger: VirtualCharger
) -> None:
    """stripe-pay.js against a recording stand-in for Stripe.js (js.stripe.com is out of
    reach offline): this checks the page's side of the contract, not Stripe's."""
    from playwright.async_api import async_playwright

    phone = Phone(stripe_server)
    try:
        session_id, form = await open_session(stripe_server, phone)
        owner = phone.client.cookies["plugpay_owner"]
    finally:
        await phone.close()
    ref = form["client-secret"].split("_secret_")[0]
    base = stripe_server.http_url

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await chromium.new_context(viewport={"width": 390, "height": 844})
            await context.add_cookies([{"name": "plugpay_owner", "value": owner, "url": base}])
            await context.route(
                "https://js.stripe.com/v3/",
                lambda route: route.fulfill(path=STRIPE_JS_STANDIN, content_type="text/javascript"),
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{base}/pay/{session_id}")

            calls: list[Any] = await page.evaluate("window.stripeStandin.calls")
            assert calls[:2] == [
                ["Stripe", PUBLISHABLE_KEY],
                ["elements", {"clientSecret": form["client-secret"], "locale": "en"}],
            ]
            assert ["mount", "payment", "#payment-element"] in calls
            assert ["mount", "expressCheckout", "#express-checkout"] in calls
            assert ["on", "expressCheckout", "confirm"] in calls

            # A decline: Stripe's words for the cardholder, and the button works again.
            await page.evaluate(
                "window.stripeStandin.next = {error: {type: 'card_error', "
                "code: 'card_declined', message: 'Your card was declined.'}}"
            )
            await page.click("#pay")
            await page.wait_for_selector("#payment-error:not([hidden])")
            assert await page.text_content("#payment-error") == "Your card was declined."
            assert await page.is_enabled("#pay")

            # Anything else: plain words of ours, not a developer's message.
            await page.evaluate(
                "window.stripeStandin.next = {error: {type: 'api_error', message: 'oops'}}"
            )
            await page.click("#pay")
            await page.wait_for_function(
                "document.getElementById('payment-error').textContent.includes('another card')"
            )
            assert await page.is_enabled("#pay")

            # Apple Pay / Google Pay refused: the wallet sheet is told, the page says why.
            failed = await page.evaluate(
                """() => new Promise((resolve) => {
                    window.stripeStandin.next = {error: {type: 'card_error', message: 'Nope.'}};
                    window.stripeStandin.fire('expressCheckout', 'confirm', {
                        expressPaymentType: 'google_pay',
                        paymentFailed: (payload) => resolve(payload),
                    });
                })"""
            )
            assert failed == {"reason": "fail"}
            await page.wait_for_function(
                "document.getElementById('payment-error').textContent === 'Nope.'"
            )

            every_confirm = {
                "confirmParams": {"return_url": f"{base}/pay/{session_id}/return"},
                "elements": True,
            }
            calls = await page.evaluate("window.stripeStandin.calls")
            assert [c[1] for c in calls if c[0] == "confirmPayment"] == [every_confirm] * 3

            # The hold is confirmed (here on localstripe, by Stripe.js for real): on to
            # the return URL, where the server reads the PaymentIntent and starts.
            await browser.confirm(ref)
            await page.click("#pay")
            await page.wait_for_url(f"{base}/s/{session_id}")
            assert errors == []
        finally:
            await chromium.close()

    await eventually(lambda: charging(stripe_server, session_id))
