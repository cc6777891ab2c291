"""Migrations are the schema: `alembic upgrade head` on an empty database equals the tables."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from plugpay.store.database import create_engine
from plugpay.store.tables import metadata


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_database_matches_the_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_diff)
    finally:
        await engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    from plugpay.store.migrate import upgrade

    upgrade(sqlite_url)  # already at head: nothing to do, no error
    upgrade(sqlite_url)


__all__ = ["asyncio"]
