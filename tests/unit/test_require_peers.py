"""PLUGPAY_TEST_REQUIRE_PEERS=1 turns a skip for a missing peer into a failure, and
refuses to start a session without the PostgreSQL and Redis URLs. Each test runs an
inner pytest with the plugin of tests/support/peers.py."""

from __future__ import annotations

import pytest

from support.peers import REQUIRE_PEERS, peers_of
from support.workers import redis_url_for

pytest_plugins = ["pytester"]

# The inner runs need none of the suite's plugins (and are quicker without them).
QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:hypothesispytest")

TESTS = """
import os

import pytest

from support.peers import skip_missing_peer


@pytest.mark.skipif(
    not os.environ.get("NO_SUCH_REDIS_URL"), reason="PLUGPAY_TEST_REDIS_URL is not set"
)
def test_needs_redis():
    pass


def test_needs_chromium():
    skip_missing_peer("Chromium", "not at /usr/bin/chromium", "apt-get install -y chromium")


@pytest.fixture
def localstripe():
    pytest.skip("localstripe could not start, so the Stripe flow is untested here: boom")


def test_needs_localstripe(localstripe):
    pass


@pytest.mark.allow_skip
def test_allowed_to_skip():
    pytest.skip("not about a peer")


@pytest.mark.xfail(reason="known")
def test_expected_to_fail():
    raise AssertionError


def test_plain():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["support.peers"]')
    pytester.makepyfile(test_peers=TESTS)
    monkeypatch.setenv("PLUGPAY_TEST_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/x")
    monkeypatch.setenv("PLUGPAY_TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    return pytester


def test_without_the_setting_a_missing_peer_is_a_skip(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REQUIRE_PEERS, raising=False)
    monkeypatch.delenv("PLUGPAY_TEST_REDIS_URL")
    result = inner.runpytest(*QUIET)
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)


def test_with_the_setting_a_missing_peer_fails_and_says_which_and_how(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(REQUIRE_PEERS, "1")
    result = inner.runpytest(*QUIET, "-rA")
    # A skip in setup (skipif, a fixture) is reported as an error, one in the test as a failure.
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*missing peer: Redis (PLUGPAY_TEST_REQUIRE_PEERS=1 turns this skip into a failure)",
            "*skip reason: PLUGPAY_TEST_REDIS_URL is not set",
            "*to provide Redis: start it*export PLUGPAY_TEST_REDIS_URL=redis://127.0.0.1:6379/0",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*missing peer: Chromium*", "*to provide Chromium: apt-get install -y chromium"]
    )
    result.stdout.fnmatch_lines(["*missing peer: localstripe*"])


def test_with_the_setting_a_module_skipped_at_collection_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest('pytest_plugins = ["support.peers"]')
    pytester.makepyfile(
        test_module="""
        import pytest
        pytest.skip("the ocpp-rpc peer needs Node.js and npm on PATH", allow_module_level=True)
        """
    )
    monkeypatch.setenv(REQUIRE_PEERS, "1")
    monkeypatch.setenv("PLUGPAY_TEST_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/x")
    monkeypatch.setenv("PLUGPAY_TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*missing peer: ocpp-rpc (Node.js and npm)*"])


@pytest.mark.parametrize("unset", ["PLUGPAY_TEST_DATABASE_URL", "PLUGPAY_TEST_REDIS_URL"])
def test_with_the_setting_the_session_needs_both_urls(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, unset: str
) -> None:
    monkeypatch.setenv(REQUIRE_PEERS, "1")
    monkeypatch.delenv(unset)
    result = inner.runpytest(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*PLUGPAY_TEST_REQUIRE_PEERS=1, but {unset} is not set*"])


def test_a_reason_naming_both_databases_names_both_peers() -> None:
    reason = "needs PLUGPAY_TEST_DATABASE_URL and PLUGPAY_TEST_REDIS_URL"
    assert [peer.name for peer in peers_of(reason)] == ["PostgreSQL", "Redis"]
    assert [p.name for p in peers_of("localstripe did not start: redis")] == ["localstripe"]


def test_each_worker_gets_a_redis_database_of_its_own() -> None:
    assert redis_url_for("redis://127.0.0.1:6379/0", "gw0") == "redis://127.0.0.1:6379/1"
    assert redis_url_for("redis://127.0.0.1:6379/0", "gw1") == "redis://127.0.0.1:6379/2"
    assert redis_url_for("redis://:pw@h:6379/3", "gw1") == "redis://:pw@h:6379/5"
    assert redis_url_for("redis://127.0.0.1:6379", "gw0") == "redis://127.0.0.1:6379/1"
