"""Fixtures for the Stripe flow and webhook tests; a test module loads them with
``pytest_plugins = ["support.stripe_fixtures"]``.

``localstripe_url``: one localstripe per test module, wiped for each test.
``stripe_proxy``: a recording proxy in front of it that the app talks to, so a
test sees every request the server made to Stripe (and can take Stripe down).
``stripe_server``: the real app with PLUGPAY_PAYMENTS=stripe on a loopback port.
``browser``: the driver's browser, doing what Stripe.js does, straight to localstripe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conftest import make_settings
from support.localstripe import LocalstripeUnavailable, run_localstripe, wipe
from support.server import RunningServer, start_server
from support.stripe_app import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    FlakyProxy,
    StripeBrowser,
)


@pytest.fixture(scope="module")
def localstripe_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    try:
        with run_localstripe(log) as url:
            yield url
    except LocalstripeUnavailable as exc:
        pytest.skip(f"localstripe could not start, so the Stripe flow is untested here: {exc}")


@pytest.fixture
def localstripe_url(localstripe_module: str) -> str:
    wipe(localstripe_module)
    return localstripe_module


@pytest.fixture
async def stripe_proxy(localstripe_url: str) -> AsyncIterator[FlakyProxy]:
    proxy = FlakyProxy(localstripe_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def stripe_server(
    database_url: str, stripe_proxy: FlakyProxy
) -> AsyncIterator[RunningServer]:
    running = await start_server(
        make_settings(
            database_url,
            payments="stripe",
            stripe_secret_key=SECRET_KEY,
            stripe_publishable_key=PUBLISHABLE_KEY,
            stripe_webhook_secret=WEBHOOK_SECRET,
            stripe_api_base=stripe_proxy.url,
        )
    )
    yield running
    await running.stop()


@pytest.fixture
async def browser(localstripe_url: str) -> AsyncIterator[StripeBrowser]:
    browser = StripeBrowser(localstripe_url)
    yield browser
    await browser.close()
