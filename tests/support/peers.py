"""The real peers the suites talk to, and what a missing one means.

By default a suite whose peer is missing (PostgreSQL or Redis not configured,
Chromium not installed, Node.js/npm for the ocpp-rpc charger or the oidc-provider
absent, localstripe not starting) is skipped, so the tests pass on a bare machine. With
``PLUGPAY_TEST_REQUIRE_PEERS=1`` (set by ``.ci/run``) nothing may be skipped:

- the session refuses to start unless PLUGPAY_TEST_DATABASE_URL and
  PLUGPAY_TEST_REDIS_URL are set;
- every skip becomes a failure that names the missing peer and how to provide it.
  A skip that is not about a peer can be allowed with ``@pytest.mark.allow_skip``.

This module is a pytest plugin: tests/conftest.py loads it through ``pytest_plugins``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import NoReturn

import pytest

REQUIRE_PEERS = "PLUGPAY_TEST_REQUIRE_PEERS"
REQUIRED_URLS = {
    "PLUGPAY_TEST_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    "PLUGPAY_TEST_REDIS_URL": "redis://127.0.0.1:6379/0",
}
MISSING = "missing peer"  # every skip reason made by skip_missing_peer starts with it


def peers_required() -> bool:
    return os.environ.get(REQUIRE_PEERS, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Peer:
    name: str
    pattern: re.Pattern[str]  # looked for in a skip reason
    how: str


# Most specific first: a reason that names one of the first three is about it alone
# (localstripe's carries the end of its log, which may say anything).
PEERS = [
    Peer(
        "localstripe",
        re.compile(r"localstripe", re.IGNORECASE),
        "install the dev dependency group (uv sync --frozen brings localstripe);"
        " the skip reason above ends with its log",
    ),
    Peer(
        "oidc-provider (Node.js and npm)",
        re.compile(r"oidc-provider", re.IGNORECASE),
        "install Node.js >= 20 and npm (apt-get install -y nodejs npm), then"
        " (cd tests/peers/oidc && npm ci)",
    ),
    Peer(
        "ocpp-rpc (Node.js and npm)",
        re.compile(r"ocpp-rpc|node\.?js|\bnpm\b", re.IGNORECASE),
        "install Node.js >= 20 and npm (apt-get install -y nodejs npm), then"
        " (cd tests/peers/ocpp_rpc && npm ci)",
    ),
    Peer(
        "Chromium",
        re.compile(r"chromium|playwright", re.IGNORECASE),
        "install Debian's package: apt-get install -y chromium (it must be /usr/bin/chromium)",
    ),
    Peer(
        "PostgreSQL",
        re.compile(r"PLUGPAY_TEST_DATABASE_URL|postgres", re.IGNORECASE),
        "start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
        " and export PLUGPAY_TEST_DATABASE_URL=" + REQUIRED_URLS["PLUGPAY_TEST_DATABASE_URL"],
    ),
    Peer(
        "Redis",
        re.compile(r"PLUGPAY_TEST_REDIS_URL|redis", re.IGNORECASE),
        "start it (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''"
        " --appendonly no) and export PLUGPAY_TEST_REDIS_URL="
        + REQUIRED_URLS["PLUGPAY_TEST_REDIS_URL"],
    ),
]
EXCLUSIVE = 4  # PEERS[:EXCLUSIVE] are named alone


def peers_of(reason: str) -> list[Peer]:
    """The peers a skip reason is about ("needs PLUGPAY_TEST_DATABASE_URL and
    PLUGPAY_TEST_REDIS_URL" is about two)."""
    for peer in PEERS[:EXCLUSIVE]:
        if peer.pattern.search(reason):
            return [peer]
    return [peer for peer in PEERS[EXCLUSIVE:] if peer.pattern.search(reason)]


def failure_message(reason: str) -> str:
    peers = peers_of(reason)
    if not peers:
        return (
            f"skipped with {REQUIRE_PEERS}=1, where nothing may be skipped: {reason}\n"
            "If this skip is not about a missing peer, mark the test"
            " @pytest.mark.allow_skip."
        )
    names = " and ".join(peer.name for peer in peers)
    hows = "".join(f"\nto provide {peer.name}: {peer.how}" for peer in peers)
    return (
        f"{MISSING}: {names} ({REQUIRE_PEERS}=1 turns this skip into a failure)\n"
        f"skip reason: {reason}{hows}"
    )


def skip_missing_peer(name: str, reason: str, how: str = "") -> NoReturn:
    """Skip the test because peer ``name`` is missing (``reason`` says what is amiss,
    ``how`` how to provide it), or fail it when peers are required."""
    text = f"{MISSING}: {name}: {reason}"
    if peers_required():
        message = failure_message(text)
        if how:
            message = (
                f"{MISSING}: {name} ({REQUIRE_PEERS}=1 turns this skip into a failure)\n"
                f"skip reason: {reason}\nto provide {name}: {how}"
            )
        pytest.fail(message, pytrace=False)
    pytest.skip(text + (f" ({how})" if how else ""))


def missing_urls() -> list[str]:
    return [name for name in REQUIRED_URLS if not os.environ.get(name)]


def startup_error() -> str | None:
    """Why the session must not start, with PLUGPAY_TEST_REQUIRE_PEERS=1."""
    if not peers_required():
        return None
    missing = missing_urls()
    if not missing:
        return None
    exports = " ".join(f"{name}={REQUIRED_URLS[name]}" for name in missing)
    return (
        f"{REQUIRE_PEERS}=1, but {' and '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not set: the PostgreSQL and Redis suites"
        f" would not run. Start the services and export {exports}"
        f" (as .ci/run does), or unset {REQUIRE_PEERS}."
    )


def _reason_of(longrepr: object) -> str:
    # A skip's longrepr is (path, line, "Skipped: reason").
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


# -- hooks ------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"allow_skip: this test may be skipped even with {REQUIRE_PEERS}=1"
        " (for skips that are not about a missing peer)",
    )
    error = startup_error()
    if error is not None:
        raise pytest.UsageError(error)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.skipped
        and peers_required()
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("allow_skip") is None
    ):
        report.outcome = "failed"
        report.longrepr = failure_message(_reason_of(report.longrepr))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # pytest.skip(..., allow_module_level=True) skips a whole module at collection.
    report = yield
    if report.skipped and peers_required():
        report.outcome = "failed"
        report.longrepr = failure_message(_reason_of(report.longrepr))
    return report
