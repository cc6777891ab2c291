"""The driver's whole flow in headless Chromium, against the real app with the demo payment
provider and a virtual charger: scan URL, price, pay, live charging over SSE, stop, receipt.

The server runs in the test's event loop (uvicorn on a loopback port), so the tests use
Playwright's async API. Screenshots of every page go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from plugpay.config import Settings
from plugpay.web.i18n import LOCALE
from support.chromium import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from support.driver import demo_site, running_sim, stop_sim
from support.server import RunningServer, start_server
from support.sessions import force, record_of

PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 360, "height": 740}
PAGE_BUDGET = 60 * 1024  # bytes, gzip: HTML + CSS + JS of the connector page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[RunningServer]:
    settings = Settings(
        database_url=sqlite_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        ocpp_call_timeout=5.0,
    )
    running = await start_server(settings)
    await demo_site(running)
    sim, task = await running_sim(running, "1.6", power_kw=50.0, meter_interval=0.25)
    yield running
    await stop_sim(sim, task)
    await running.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


# -- helpers --------------------------------------------------------------------------------


async def snap(page: Any, name: str) -> None:
    """The whole page as one picture, the sticky action bar where it comes to rest."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewport = page.viewport_size
    height = await page.evaluate("document.scrollingElement.scrollHeight")
    await page.set_viewport_size({"width": viewport["width"], "height": max(height, 1)})
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    await page.set_viewport_size(viewport)


async def fits_width(page: Any) -> None:
    width = page.viewport_size["width"]
    overflow = await page.evaluate(
        """(width) => {
            const wide = [...document.querySelectorAll('body *')]
                .filter((el) => el.getBoundingClientRect().right > width + 0.5)
                .map((el) => el.tagName + '.' + el.className + ' ' + el.getBoundingClientRect().right);
            return {scroll: document.scrollingElement.scrollWidth, wide: wide.slice(0, 5)};
        }""",
        width,
    )
    assert overflow["scroll"] <= width and overflow["wide"] == [], overflow


A11Y = """() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const h1 = [...document.querySelectorAll('h1')].filter(visible);
  if (h1.length !== 1) problems.push(`${h1.length} h1 elements`);
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const named = (el.labels && el.labels.length && [...el.labels].some((l) => l.innerText.trim()))
      || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) problems.push('form control without a label: ' + el.outerHTML.slice(0, 80));
  }
  for (const el of document.querySelectorAll('button, a, [role=button]')) {
    if (!visible(el)) continue;
    const text = (el.innerText || '').trim() || el.getAttribute('aria-label')
      || [...el.querySelectorAll('img[alt]')].map((i) => i.alt).join('');
    if (!text) problems.push('control without text: ' + el.outerHTML.slice(0, 80));
  }
  const primaries = [...document.querySelectorAll('.btn-primary')].filter(visible);
  if (primaries.length > 1) problems.push(`${primaries.length} primary actions`);
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  // Contrast of every piece of visible text against the background it sits on (WCAG AA).
  const rgb = (s) => { const m = s.match(/[\\d.]+/g) || []; return m.map(Number); };
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length === 3 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || !visible(el)) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.closest('[disabled], .visually-hidden, .skip-link')) continue;
    const fg = lum(rgb(style.color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: ${node.textContent.trim().slice(0, 40)}`);
  }
  return problems;
}"""


async def accessible(page: Any) -> None:
    assert await page.evaluate(A11Y) == []


async def test_the_accessibility_check_finds_problems(browser: Any) -> None:
    """The checker itself: a page with each kind of problem gets each one reported."""
    page = await browser.new_page()
    await page.set_content(
        """<html><body style="background:#fff"><h1>One</h1><h1>Two</h1>
        <input id="x"><button></button><p style="color:#bbb">faint text</p>
        <a class="btn btn-primary" href="#">A</a><a class="btn btn-primary" href="#">B</a>
        </body></html>"""
    )
    problems = " | ".join(await page.evaluate(A11Y))
    for expected in (
        "2 h1 elements",
        "form control without a label",
        "control without text",
        "2 primary actions",
        "no lang",
        "faint text",
    ):
        assert expected in problems
    await page.close()


async def in_thumb_zone(page: Any, selector: str) -> None:
    """The main action sits in the lower half of the first screen, fully visible."""
    box = await page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    assert box is not None and box["y"] >= height / 2 and box["y"] + box["height"] <= height, box


async def checked_page(page: Any, name: str) -> None:
    await fits_width(page)
    await accessible(page)
    await snap(page, name)


def session_id_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


async def open_connector(context: Any, server: RunningServer, connector: int = 1) -> Any:
    page = await context.new_page()
    await page.goto(f"{server.http_url}/c/CP-1/{connector}")
    return page


async def pay_with(page: Any, card: str) -> None:
    await page.check(f'input[name="card"][value="{card}"]')
    async with page.expect_navigation():
        await page.click("#pay")


# -- the flow -------------------------------------------------------------------------------


async def test_scan_pay_charge_stop_receipt(browser: Any, app: RunningServer) -> None:
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await context.new_page()
    loaded: list[Any] = []
    page.on("requestfinished", lambda request: loaded.append(request))
    await page.goto(f"{app.http_url}/c/CP-1/1")

    # The price, with VAT, before anything starts; the hold and why; one action.
    assert await page.inner_text("h1") == "Test site"
    prices = await page.inner_text(".prices")
    assert "VAT" in prices and "€" in prices
    assert await page.inner_text(".hold-amount") == "€50.00"
    assert "only pay for what you charge" in await page.inner_text("#hold-text")
    assert await page.inner_text("#availability") == "Available"
    assert await page.locator("#start-action").count() == 1
    await in_thumb_zone(page, "#start")

    # The PWA: manifest and service worker on the real app.
    state = await page.evaluate(
        """async () => {
            const reg = await navigator.serviceWorker.ready;
            return {scope: reg.scope, script: reg.active.scriptURL};
        }"""
    )
    assert state == {"scope": app.http_url + "/", "script": app.http_url + "/sw.js"}
    manifest = await page.evaluate(
        "async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json()"
    )
    assert manifest["name"] == "plugpay" and manifest["start_url"] == "/"

    # Page weight: HTML + CSS + JS the connector page loads, gzip-compressed.
    weights: dict[str, int] = {}
    for request in loaded:
        if request.resource_type not in ("document", "stylesheet", "script"):
            continue
        response = await request.response()
        body = await response.body()
        weights[request.url.removeprefix(app.http_url)] = len(gzip.compress(body, 6))
    total = sum(weights.values())
    print(f"\nconnector page weight (gzip): {total / 1024:.1f} KB {weights}")
    assert {"/c/CP-1/1", "/static/css/app.css", "/static/js/htmx.min.js"} <= set(weights)
    assert total <= PAGE_BUDGET

    await checked_page(page, "driver_1_connector")

    # Pay: the clearly labelled demo card form.
    async with page.expect_navigation():
        await page.click("#start")
    assert "/pay/" in page.url
    session_id = session_id_of(page.url)
    assert "demo" in (await page.inner_text("main")).lower()
    await in_thumb_zone(page, "#pay")
    await checked_page(page, "driver_2_pay")
    await pay_with(page, "approve")
    assert page.url == f"{app.http_url}/s/{session_id}"

    # Live: rising kWh and cost over SSE, without a reload.
    await page.evaluate("window.notReloaded = true")
    await page.wait_for_selector("#energy", timeout=15_000)
    seen = [await page.inner_text("#energy")]
    costs = [await page.inner_text("#cost")]
    for _ in range(2):
        await page.wait_for_function(
            "(before) => document.querySelector('#energy').textContent !== before",
            arg=seen[-1],
            timeout=10_000,
        )
        seen.append(await page.inner_text("#energy"))
        costs.append(await page.inner_text("#cost"))
    assert await page.evaluate("window.notReloaded") is True
    energies = [float(re.sub(r"[^\d.]", "", s)) for s in seen]
    assert energies == sorted(energies) and energies[-1] > energies[0], seen
    assert costs[-1] != "€0.00", costs
    assert await page.inner_text("#live .pill") == "Charging"
    # The elapsed clock ticks in the page.
    first = await page.inner_text("#elapsed")
    assert re.fullmatch(r"\d\d:\d\d", first), first
    await page.wait_for_function(
        "(before) => document.querySelector('#elapsed').textContent !== before", arg=first
    )
    await checked_page(page, "driver_3_charging")

    # After a reload the page shows the true current state, rendered by the server.
    await page.reload()
    assert await page.evaluate("window.notReloaded") is None
    assert await page.inner_text("#live .pill") == "Charging"
    reloaded = float(re.sub(r"[^\d.]", "", await page.inner_text("#energy")))
    assert reloaded >= energies[-1]

    # When it last heard from the charger, kept current; the link can be kept.
    assert "ago" in await page.inner_text("#heard time") or "now" in await page.inner_text(
        "#heard time"
    )
    assert "bookmark" in await page.inner_text("#keep-link")

    # Stop asks once: the first tap turns the button into the question and keeps the
    # focus there, while the readings go on coming; the charge goes on meanwhile.
    await page.click("#stop")
    assert await page.inner_text("#stop") == "Tap again to stop charging"
    assert await page.inner_text("#live-status") == "Tap again to stop charging"
    before = await page.inner_text("#energy")
    await page.wait_for_function(
        "(before) => document.querySelector('#energy').textContent !== before",
        arg=before,
        timeout=10_000,
    )
    assert await page.inner_text("#stop") == "Tap again to stop charging"
    assert await page.evaluate("document.activeElement.id") == "stop"
    assert (await record_of(app, session_id)).state == "CHARGING"
    await checked_page(page, "driver_3_stop_asks")

    # The second tap stops: the page says so (when the charger is quick, already in the
    # server's render), then shows the total and the receipt link.
    async with page.expect_navigation():
        await page.click("#stop")
    await page.wait_for_selector("#receipt-link", timeout=15_000)
    assert "Charging complete" in await page.inner_text("#live")
    assert await page.locator("#stop").count() == 0
    await checked_page(page, "driver_4_complete")

    # The receipt: lines with VAT and the total; printable.
    async with page.expect_navigation():
        await page.click("#receipt-link")
    assert page.url == f"{app.http_url}/r/{session_id}"
    lines = await page.locator("table.lines tbody tr").count()
    assert lines >= 1
    total = await page.inner_text("#receipt-total")
    assert re.fullmatch(r"€\d+\.\d\d", total), total
    assert "VAT" in await page.inner_text("table.lines")
    await checked_page(page, "driver_5_receipt")
    await page.evaluate("window.print = () => { window.printed = true; }")
    await page.click("[data-print]")
    assert await page.evaluate("window.printed") is True
    await page.emulate_media(media="print")
    assert not await page.is_visible(".site-header")
    assert not await page.is_visible("[data-print]")
    await snap(page, "driver_5_receipt_print")

    # The start page leads back to it: this browser's charges, newest first.
    await page.emulate_media(media="screen")
    await page.goto(f"{app.http_url}/")
    listed = page.locator(f'#sessions a[href="/s/{session_id}"]')
    assert await listed.count() == 1
    assert "Paid" in await listed.inner_text() or "Settling" in await listed.inner_text()
    await checked_page(page, "driver_6_home")
    await context.close()


async def test_declined_card_then_a_card_that_needs_the_bank(
    browser: Any, app: RunningServer
) -> None:
    """At 360 px: a decline in plain words with the form still there; another card whose
    bank asks for confirmation shows that step; approving it starts the charge."""
    context = await browser.new_context(viewport=SMALL_PHONE, locale="en-GB")
    page = await open_connector(context, app)
    await in_thumb_zone(page, "#start")
    await checked_page(page, "driver_360_connector")
    async with page.expect_navigation():
        await page.click("#start")
    await checked_page(page, "driver_360_pay")
    await pay_with(page, "decline")
    assert "/pay/" in page.url
    alert = await page.inner_text("[role=alert]")
    assert alert == "Your card was declined. Please try another card.", alert
    assert await page.is_checked('input[name="card"][value="approve"]')
    await in_thumb_zone(page, "#pay")
    await checked_page(page, "driver_360_declined")

    await pay_with(page, "authenticate")
    assert page.url.endswith("?auth=1")
    assert await page.inner_text("h2") == "Confirm with your bank"
    await in_thumb_zone(page, "#approve")
    await checked_page(page, "driver_360_authenticate")
    async with page.expect_navigation():
        await page.click("#approve")
    assert "/s/" in page.url
    await page.wait_for_selector("#energy", timeout=15_000)
    await checked_page(page, "driver_360_charging")
    await context.close()


async def all_german(page: Any) -> str:
    """The page's text (no-break spaces as plain ones), checked for English that has a
    German translation."""
    text = (await page.inner_text("body")).replace("\xa0", " ").replace("\u202f", " ")
    with (LOCALE / "de" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        translated = {str(m.id): str(m.string) for m in read_po(po) if m.id and not m.context}
    english = [e for e, g in translated.items() if e != g and len(e) > 6 and e in text]
    assert english == [], english
    return text


async def test_german(browser: Any, app: RunningServer) -> None:
    """The flow in German, at 360 px, in the dark colour scheme (its contrast checked too)."""
    context = await browser.new_context(viewport=SMALL_PHONE, locale="de-DE", color_scheme="dark")
    page = await open_connector(context, app)
    assert await page.evaluate("document.documentElement.lang") == "de"
    text = await all_german(page)
    assert "Preis" in text and "Bezahlen und starten" in text and "Frei" in text
    assert "inkl. 19 % MwSt." in text and "50,00 €" in text
    await checked_page(page, "driver_de_1_connector")
    async with page.expect_navigation():
        await page.click("#start")
    text = await all_german(page)
    assert "Zahlung" in text and "Dies ist eine Demo" in text
    await checked_page(page, "driver_de_2_pay")
    await pay_with(page, "approve")
    await page.wait_for_selector("#energy", timeout=15_000)
    text = await all_german(page)
    assert "Energie" in text and "Laden beenden" in text
    await checked_page(page, "driver_de_3_charging")
    await page.click("#stop")
    assert await page.inner_text("#stop") == "Zum Beenden erneut tippen"
    async with page.expect_navigation():
        await page.click("#stop")
    await page.wait_for_selector("#receipt-link", timeout=15_000)
    assert "Ladevorgang beendet" in await all_german(page)
    await checked_page(page, "driver_de_4_complete")
    async with page.expect_navigation():
        await page.click("#receipt-link")
    text = await all_german(page)
    assert "Beleg" in text and "Gesamt" in text and "Startgebühr" in text
    await checked_page(page, "driver_de_5_receipt")
    # A QR code that leads nowhere: a friendly page, in German too.
    response = await page.goto(f"{app.http_url}/c/NOPE/1")
    assert response is not None and response.status == 404
    assert await page.inner_text("h1") == "Seite nicht gefunden"
    await all_german(page)
    await checked_page(page, "driver_de_6_not_found")
    await context.close()


async def reserve(context: Any, server: RunningServer, connector: int) -> tuple[Any, str]:
    """A session reserved on ``connector`` and waiting on the payment page."""
    page = await context.new_page()
    await page.goto(f"{server.http_url}/c/CP-1/{connector}")
    async with page.expect_navigation():
        await page.click("#start")
    return page, session_id_of(page.url)


async def test_every_session_state_reads_well(browser: Any, app: RunningServer) -> None:
    """Starting, start failed, stopping and under review, as the server renders them and
    as the event stream swaps them in; the action bar follows the state."""
    context = await browser.new_context(viewport=SMALL_PHONE, locale="en-GB")
    # Another phone looks at connector 2, which is about to be taken.
    other = await browser.new_context(viewport=SMALL_PHONE, locale="en-GB")
    watcher = await open_connector(other, app, 2)
    assert await watcher.is_visible("#start")

    # Starting, then the charger refuses: the page turns without a reload.
    page, first = await reserve(context, app, 1)
    await force(app, first, state="STARTING")
    await page.goto(f"{app.http_url}/s/{first}")
    await page.wait_for_selector("#live [data-state=STARTING]")
    assert "Waiting for the charger to start." in await page.inner_text("#live")
    assert await page.is_visible("#stop")
    await checked_page(page, "driver_state_starting")
    await page.evaluate(
        """() => {
            window.notReloaded = true;
            document.body.addEventListener('htmx:sseClose', () => { window.sseClosed = true; });
        }"""
    )
    await force(app, first, state="START_FAILED", reason="charger_rejected")
    await page.wait_for_selector("#live [data-state=START_FAILED]")
    text = await page.inner_text("#live")
    assert "The charger refused to start." in text and "Your hold has been released." in text
    assert await page.locator("#stop").count() == 0
    assert await page.get_attribute("#again", "href") == "/c/CP-1/1"
    assert await page.evaluate("window.notReloaded") is True
    # The state change is read out once; the stream of a finished session is closed for
    # good instead of reconnecting.
    await page.wait_for_function(
        "document.getElementById('live-status').textContent === 'Did not start'"
    )
    await page.wait_for_function("window.sseClosed === true")
    await checked_page(page, "driver_state_start_failed")

    # Stopping (waiting for the charger), then under review.
    page, second = await reserve(context, app, 2)
    # The other phone sees it taken without reloading: the pill and the action change.
    await watcher.wait_for_selector("[data-availability=occupied]", timeout=10_000)
    assert await watcher.inner_text("#availability") == "Occupied"
    assert await watcher.locator("#start").count() == 0
    assert "This connector is in use" in await watcher.inner_text("#start-action")
    await other.close()
    await force(
        app,
        second,
        state="STOPPING",
        energy_wh=18_450,
        cost_minor=812,
        power_w=0,
        started_at=datetime.now(UTC) - timedelta(minutes=47),
    )
    await page.goto(f"{app.http_url}/s/{second}")
    await page.wait_for_selector("#live [data-state=STOPPING]")
    assert await page.inner_text("#live .pill") == "Stopping…"
    assert await page.inner_text("#energy") == "18.45 kWh"
    assert await page.locator("#live-actions .btn").count() == 0
    await checked_page(page, "driver_state_stopping")
    await force(app, second, state="NEEDS_REVIEW", reason="charger_silent")
    await page.wait_for_selector("#live [data-state=NEEDS_REVIEW]")
    assert "you will not pay more than the hold" in await page.inner_text("#live")
    assert await page.is_visible("#receipt-link")
    await checked_page(page, "driver_state_review")
    await context.close()


async def test_the_live_page_says_when_its_stream_drops_and_when_it_is_back(
    browser: Any, app: RunningServer
) -> None:
    context = await browser.new_context(viewport=SMALL_PHONE, locale="en-GB")
    page = await open_connector(context, app)
    async with page.expect_navigation():
        await page.click("#start")

    # The phone cannot reach the event stream (a dead spot, a proxy that cut it): every
    # attempt fails, and the page says so, over the figures it was rendered with.
    async def cut(route: Any) -> None:
        await route.abort("connectionreset")

    await page.route("**/s/*/events", cut)
    await pay_with(page, "approve")
    await page.wait_for_selector("#stream-status", state="visible", timeout=15_000)
    assert "Your charge goes on" in await page.inner_text("#stream-status")
    await checked_page(page, "driver_3_stream_lost")

    # Back: the browser reconnects by itself, the notice goes, the figures move again.
    await page.unroute("**/s/*/events", cut)
    await page.wait_for_selector("#stream-status", state="hidden", timeout=60_000)
    await page.wait_for_selector("#energy", timeout=15_000)
    before = await page.inner_text("#energy")
    await page.wait_for_function(
        "(before) => document.querySelector('#energy').textContent !== before",
        arg=before,
        timeout=15_000,
    )
    await context.close()
