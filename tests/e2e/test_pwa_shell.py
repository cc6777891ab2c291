"""The PWA shell in real headless Chromium: service worker, offline page, manifest and
icons, the phone layout at 360 px, the elapsed-time ticker, the push opt-in button and
push notifications.

The pwa/ folder is served the way the server serves it (/sw.js and /manifest.webmanifest
at the root, everything else under /static/), next to a demo page that extends base.html
and uses every macro, rendered with jinja2.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, select_autoescape

from support.chromium import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT

PWA = ROOT / "pwa"
TEMPLATES = ROOT / "backend" / "plugpay" / "web" / "templates"
PHONE = {"width": 360, "height": 740}
VAPID_KEY = base64.urlsafe_b64encode(b"\x04" + bytes(range(64))).rstrip(b"=").decode()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

DEMO_PAGE = """\
{% extends "base.html" %}
{% import "macros.html" as ui %}
{% block title %}DEMO-1 · plugpay{% endblock %}
{% block content %}
<h1>Market Square · DEMO-1</h1>
<p class="muted">{{ _("Connector") }} 1 · Type 2 · 22 kW</p>
<div class="row" style="justify-content:flex-start;margin-bottom:16px">
  {{ ui.status_pill("available", _("Available")) }}
  {{ ui.status_pill("occupied", _("Occupied")) }}
  {{ ui.status_pill("offline", _("Offline")) }}
  {{ ui.status_pill("out_of_order", _("Out of order")) }}
</div>
{{ ui.banner("notice", _("We place a hold of €50.00 on your card. You pay only what you charge.")) }}
{{ ui.banner("error", _("Your card was declined. Please try another card.")) }}
<section class="card">
  <h2>{{ _("Price") }}</h2>
  {{ ui.price_list(prices) }}
</section>
<section class="card" aria-labelledby="live-title">
  <h2 id="live-title">{{ _("Charging") }} {{ ui.status_pill("charging", _("Charging")) }}</h2>
  <dl class="figures">
    <div class="figure figure-main"><dt>{{ _("Cost so far") }}</dt><dd>€4.82</dd></div>
    <div class="figure"><dt>{{ _("Energy") }}</dt><dd>12.345<span class="unit">kWh</span></dd></div>
    <div class="figure"><dt>{{ _("Power") }}</dt><dd>21.7<span class="unit">kW</span></dd></div>
    <div class="figure"><dt>{{ _("Elapsed") }}</dt><dd><span id="elapsed" data-started-at="{{ started }}">--:--</span></dd></div>
    <div class="figure"><dt>{{ _("Hold left") }}</dt><dd>€45.18</dd></div>
  </dl>
  <div class="meter">
    <div class="meter-label"><span id="hold-label">{{ _("Cost of the €50.00 hold") }}</span><span>10 %</span></div>
    <progress value="4.82" max="50" aria-labelledby="hold-label">10 %</progress>
  </div>
  <p class="small muted">{{ _("Long session") }}: <span id="long" data-started-at="{{ long_started }}">--:--</span>
  · {{ _("Finished") }}: <span id="done" data-started-at="{{ long_started }}" data-ended-at="{{ started }}">--:--</span></p>
</section>
<form class="card" method="post" action="/pay" novalidate>
  <div class="field">
    <label for="email">{{ _("Email for the receipt") }}</label>
    <input id="email" name="email" type="email" autocomplete="email" aria-describedby="email-hint">
    <p class="hint" id="email-hint">{{ _("Optional. We send nothing else.") }}</p>
  </div>
  <div class="field">
    <label for="hold">{{ _("Hold amount") }}</label>
    <select id="hold" name="hold"><option>€30.00</option><option selected>€50.00</option></select>
    <p class="field-error">{{ _("Choose an amount.") }}</p>
  </div>
  <label class="check"><input type="checkbox" name="terms"> {{ _("I accept the terms") }}</label>
</form>
<section class="card">
  {{ ui.button(_("Notify me when it is done"), {"type": "button", "data-enable-push": true,
      "data-vapid-key": vapid_key, "data-push-url": "/push/subscribe", "data-status": "push-status",
      "data-msg-on": _("Notifications are on."), "data-msg-denied": _("Notifications are blocked."),
      "data-msg-error": _("Could not turn on notifications.")}, "secondary") }}
  <p id="push-status" class="small muted" role="status"></p>
</section>
<div class="actions">
  {{ ui.button(_("Pay and start charging"), {"type": "button"}) }}
</div>
{% endblock %}
"""

PRICES = [
    {"label": "Energy", "amount": "€0.49 / kWh", "note": "incl. 19 % VAT"},
    {
        "label": "Parking after charging",
        "amount": "€0.10 / min",
        "note": "from 60 min, max. €12.00",
    },
    {"label": "Session fee", "amount": "€0.50"},
    {
        "label": "Hold on your card",
        "amount": "€50.00",
        "note": "released after charging",
        "total": True,
    },
]

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webmanifest": "application/manifest+json",
}


def templates() -> Environment:
    env = Environment(
        loader=ChoiceLoader([DictLoader({"demo.html": DEMO_PAGE}), FileSystemLoader(TEMPLATES)]),
        autoescape=select_autoescape(),
    )
    env.globals["_"] = lambda text, **_kw: text
    return env


@dataclass
class Shell:
    base: str
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


def make_handler(shell: Shell, env: Environment) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def page(self, code: int, name: str, **context: object) -> None:
            html = env.get_template(name).render(lang="en", csrf_token="x", **context)
            self.send(code, html.encode(), CONTENT_TYPES[".html"])

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            now = datetime.now(UTC)
            if path == "/":
                self.page(
                    200,
                    "demo.html",
                    prices=PRICES,
                    vapid_key=VAPID_KEY,
                    started=(now - timedelta(seconds=754)).isoformat(),
                    long_started=(now - timedelta(seconds=3725)).isoformat(),
                )
            elif path in ("/sw.js", "/manifest.webmanifest"):
                self.file(PWA / path[1:])
            elif path.startswith("/static/"):
                self.file(PWA / path.removeprefix("/static/"))
            elif path == "/api/ping":
                self.send(200, b'{"ok": true}', "application/json")
            elif re.fullmatch(r"/s/[^/]+/events", path):
                self.send(200, b"id: 1\nevent: update\ndata: hi\n\n", "text/event-stream")
            else:
                self.page(
                    404,
                    "error.html",
                    status=404,
                    title="Page not found",
                    message="There is no charger or session at this address.",
                )

        def file(self, target: Path) -> None:
            target = target.resolve()
            if not target.is_file() or PWA not in target.parents:
                self.send(404, b"not found", "text/plain")
                return
            kind = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
            self.send(200, target.read_bytes(), kind)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            shell.posts.append((self.path, dict(self.headers.items()), body))
            self.send(201, b"{}", "application/json")

    return Handler


@pytest.fixture(scope="module")
def shell() -> Iterator[Shell]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Shell(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = make_handler(state, templates())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
async def playwright() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


@pytest.fixture
async def browser(playwright) -> AsyncIterator[object]:
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    await chromium.close()


async def open_page(browser, shell: Shell, context=None, **context_options):
    if context is None:
        context = await browser.new_context(viewport=PHONE, **context_options)
    page = await context.new_page()
    await page.goto(shell.base + "/")
    state = await page.evaluate(
        """async () => {
            const reg = await navigator.serviceWorker.ready;
            const sw = reg.active;
            if (sw.state !== "activated") {
                await new Promise((done) => sw.addEventListener("statechange", () => {
                    if (sw.state === "activated") done();
                }));
            }
            return sw.state;
        }"""
    )
    assert state == "activated"
    await page.wait_for_function("navigator.serviceWorker.controller !== null")
    return context, page


async def cached_urls(page) -> list[str]:
    return await page.evaluate(
        """async () => {
            const urls = [];
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) urls.push(name + " " + request.url);
            }
            return urls;
        }"""
    )


async def test_service_worker_activates_and_caches_only_the_shell(browser, shell: Shell) -> None:
    context, page = await open_page(browser, shell)
    entries = await cached_urls(page)
    names = {entry.split(" ", 1)[0] for entry in entries}
    assert len(names) == 1
    assert names.pop().startswith("plugpay-shell-v")
    paths = {entry.split(" ", 1)[1].removeprefix(shell.base) for entry in entries}
    for expected in (
        "/static/offline.html",
        "/static/css/app.css",
        "/static/js/app.js",
        "/static/js/htmx.min.js",
        "/static/js/ext/sse.js",
        "/static/icons/icon-192.png",
        "/static/icons/icon-512.png",
        "/static/icons/icon-maskable-512.png",
        "/manifest.webmanifest",
    ):
        assert expected in paths

    # Live data, APIs, webhooks and POSTs go past the cache; pages are not stored either.
    result = await page.evaluate(
        """async () => {
            const api = await (await fetch("/api/ping")).json();
            const events = await (await fetch("/s/abc/events")).text();
            const post = (await fetch("/webhooks/stripe", {method: "POST", body: "{}"})).status;
            return {api, events, post};
        }"""
    )
    assert result == {
        "api": {"ok": True},
        "events": "id: 1\nevent: update\ndata: hi\n\n",
        "post": 201,
    }
    await page.goto(shell.base + "/c/DEMO-1/1")
    assert "Page not found" in await page.inner_text("h1")
    after = await cached_urls(page)
    assert not [u for u in after if re.search(r"/api/|/events|/webhooks/|/c/DEMO", u)]
    assert not [u for u in after if u.endswith(shell.base + "/")]
    await context.close()


async def test_offline_navigation_shows_the_offline_page(browser, shell: Shell) -> None:
    context, page = await open_page(browser, shell)
    await context.set_offline(True)
    await page.goto(shell.base + "/c/DEMO-1/1")
    text = await page.inner_text("body")
    assert "You are offline" in text
    assert "Sie sind offline" in text
    assert await page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "pwa_offline.png"), full_page=True)
    # Back online, the same address loads from the network again.
    await context.set_offline(False)
    await page.goto(shell.base + "/c/DEMO-1/1")
    assert "Page not found" in await page.inner_text("h1")
    await context.close()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


async def test_manifest_is_valid_and_its_icons_load(
    playwright, shell: Shell, tmp_path: Path
) -> None:
    with urllib.request.urlopen(shell.base + "/manifest.webmanifest") as response:
        assert response.headers["Content-Type"].startswith("application/manifest+json")
        manifest = json.loads(response.read())
    assert manifest["name"] == "plugpay"
    assert manifest["short_name"]
    assert manifest["start_url"] == "/"
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["background_color"])
    seen = set()
    for icon in manifest["icons"]:
        with urllib.request.urlopen(shell.base + icon["src"]) as response:
            data = response.read()
            assert response.headers["Content-Type"] == icon["type"]
        if icon["type"] == "image/png":
            width, height = png_size(data)
            assert icon["sizes"] == f"{width}x{height}"
        else:
            assert data.lstrip().startswith(b"<svg")
        seen.add((icon["sizes"], icon.get("purpose", "any")))
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= seen

    # Chromium's own reading of the manifest: no errors, and the app is installable
    # (which needs a profile on disk: Chromium never offers installs in incognito).
    profile = await playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=PHONE
    )
    context, page = await open_page(None, shell, context=profile)
    cdp = await context.new_cdp_session(page)
    parsed = await cdp.send("Page.getAppManifest")
    assert parsed["errors"] == []
    assert parsed["url"] == shell.base + "/manifest.webmanifest"
    installability = await cdp.send("Page.getInstallabilityErrors")
    assert installability["installabilityErrors"] == []
    await context.close()


async def test_phone_layout_fits_360_px(browser, shell: Shell) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for scheme, name in (("light", "pwa_shell.png"), ("dark", "pwa_shell_dark.png")):
        context, page = await open_page(browser, shell, color_scheme=scheme)
        assert await page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        # Every button and field is a comfortable thumb target.
        small = await page.evaluate(
            """() => [...document.querySelectorAll('.btn, input:not([type=checkbox]), select, .check')]
                .map((el) => [el.outerHTML.slice(0, 60), el.getBoundingClientRect().height])
                .filter(([, h]) => h < 48)"""
        )
        assert small == []
        assert await page.evaluate("document.documentElement.lang") == "en"
        assert await page.get_attribute('meta[name="csrf-token"]', "content") == "x"
        # The whole page as one picture, with the sticky action bar where it comes to rest.
        height = await page.evaluate("document.scrollingElement.scrollHeight")
        await page.set_viewport_size({"width": PHONE["width"], "height": height})
        await page.screenshot(path=str(ARTIFACTS / name))
        await page.set_viewport_size(PHONE)
        await page.goto(shell.base + "/no/such/page")
        assert await page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        if scheme == "light":
            await page.screenshot(path=str(ARTIFACTS / "pwa_error.png"), full_page=True)
        await context.close()


async def test_elapsed_time_ticks(browser, shell: Shell) -> None:
    context, page = await open_page(browser, shell)
    first = await page.inner_text("#elapsed")
    assert re.fullmatch(r"12:(3[4-9])", first), first
    await page.wait_for_function(f"document.querySelector('#elapsed').textContent !== {first!r}")
    assert re.fullmatch(r"1:02:0\d", await page.inner_text("#long"))
    assert await page.inner_text("#done") == "49:31"
    # A ticking clock must not make a surrounding live region speak every second.
    assert await page.get_attribute("#elapsed", "aria-live") == "off"
    await context.close()


async def test_push_button_posts_the_subscription_with_the_csrf_token(
    browser, shell: Shell
) -> None:
    context, page = await open_page(browser, shell)
    await context.grant_permissions(["notifications"], origin=shell.base)
    # No push service is reachable from a test machine: stand in for the browser's
    # PushManager at its boundary and check what the page sends to our server.
    await page.evaluate(
        """() => {
            PushManager.prototype.getSubscription = async () => null;
            PushManager.prototype.subscribe = async (options) => {
                window.subscribedWith = {
                    userVisibleOnly: options.userVisibleOnly,
                    keyLength: options.applicationServerKey.length,
                    firstByte: options.applicationServerKey[0],
                    lastByte: options.applicationServerKey[64],
                };
                return {toJSON: () => ({endpoint: "https://push.example/abc",
                                        keys: {p256dh: "p", auth: "a"}})};
            };
        }"""
    )
    before = len(shell.posts)
    await page.click("[data-enable-push]")
    await page.wait_for_selector('[data-push-state="on"]')
    assert await page.inner_text("#push-status") == "Notifications are on."
    assert await page.evaluate("window.subscribedWith") == {
        "userVisibleOnly": True,
        "keyLength": 65,
        "firstByte": 4,
        "lastByte": 63,
    }
    path, headers, body = shell.posts[before]
    assert path == "/push/subscribe"
    assert headers["X-CSRF-Token"] == "x"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "endpoint": "https://push.example/abc",
        "keys": {"p256dh": "p", "auth": "a"},
    }
    await context.close()


async def test_push_message_shows_a_notification(browser, shell: Shell) -> None:
    context, page = await open_page(browser, shell)
    await context.grant_permissions(["notifications"], origin=shell.base)
    cdp = await context.new_cdp_session(page)
    registrations: list[dict[str, object]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    await cdp.send("ServiceWorker.enable")
    for _ in range(50):
        live = [r["registrationId"] for r in registrations if not r["isDeleted"]]
        if live:
            break
        await page.wait_for_timeout(100)
    registration_id = live[0]
    payload = {
        "title": "Charging finished",
        "body": "Total €7.35",
        "url": "/r/abc",
        "tag": "receipt-abc",
    }
    shown = None
    # A worker that Chromium has just stopped may drop a push delivered while it
    # restarts; the same message (same tag) is delivered again until shown.
    for _ in range(3):
        await cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": shell.base + "/",
                "registrationId": registration_id,
                "data": json.dumps(payload),
            },
        )
        for _ in range(50):
            shown = await page.evaluate(
                """async () => {
                    const reg = await navigator.serviceWorker.ready;
                    const [n] = await reg.getNotifications();
                    return n ? {title: n.title, body: n.body, tag: n.tag, url: n.data.url} : null;
                }"""
            )
            if shown:
                break
            await page.wait_for_timeout(100)
        if shown:
            break
    assert shown == {
        "title": "Charging finished",
        "body": "Total €7.35",
        "tag": "receipt-abc",
        "url": shell.base + "/r/abc",
    }
    await context.close()
