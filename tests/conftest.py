"""Shared fixtures: a fresh migrated database per test (SQLite, and PostgreSQL when
PLUGPAY_TEST_DATABASE_URL is set), and the real server on a loopback port.

PLUGPAY_TEST_REQUIRE_PEERS=1 (set by .ci/run) turns every skip for a missing peer
into a failure (support/peers.py). Under pytest-xdist each worker gets its own
Redis database and channel names (support/workers.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from plugpay.config import Settings
from plugpay.notify.webpush import generate_vapid_private_key
from support.databases import PG_URL, PostgresDatabases, SqliteDatabases
from support.server import RunningServer, start_server
from support.workers import isolate_worker

isolate_worker()  # before any test module reads PLUGPAY_TEST_REDIS_URL

pytest_plugins = ["support.peers"]

BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases | None]:
    if not PG_URL:
        yield None
        return
    databases = PostgresDatabases(PG_URL)
    yield databases
    databases.drop()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    sqlite_databases: SqliteDatabases,
    postgres_databases: PostgresDatabases | None,
) -> str:
    if request.param == "postgres":
        assert postgres_databases is not None
        return postgres_databases.fresh()
    return sqlite_databases.fresh()


@pytest.fixture
def sqlite_url(sqlite_databases: SqliteDatabases) -> str:
    return sqlite_databases.fresh()


_VAPID_KEY = generate_vapid_private_key()


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "vapid_private_key": _VAPID_KEY,
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "ocpp_call_timeout": 5.0,
        # Tests start many sessions from one address; the limits have tests of their own.
        "guest_starts_per_address": 10_000,
        "guest_starts_per_connector": 10_000,
        # A booted charger's local list at once (its spread has a test of its own).
        "local_list_delay": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[RunningServer]:
    running = await start_server(make_settings(database_url))
    yield running
    await running.stop()


PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
async def charger_id(server: RunningServer) -> str:
    await server.runtime.services.chargers.add_charger(
        "CP-1", PASSWORD, connectors=2, site="Test site"
    )
    return "CP-1"


os.environ.setdefault("PLUGPAY_ENV", "test")
