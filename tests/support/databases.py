"""Fresh, migrated databases for tests: SQLite files, and PostgreSQL when configured."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from plugpay.store.migrate import upgrade
from plugpay.store.tables import metadata

PG_URL = os.environ.get("PLUGPAY_TEST_DATABASE_URL")


class SqliteDatabases:
    """Migrate once (alembic upgrade head on an empty file), copy per test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template.db"
        upgrade(f"sqlite+aiosqlite:///{self.template}")

    def fresh(self) -> str:
        path = self.root / f"{uuid.uuid4().hex}.db"
        shutil.copy(self.template, path)
        return f"sqlite+aiosqlite:///{path}"


class PostgresDatabases:
    """One database per test run, and so per xdist worker (created, migrated, dropped);
    tables emptied per test. The name carries the worker id and a random part."""

    def __init__(self, url: str) -> None:
        base, _, _ = url.rpartition("/")
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        tag = f"{worker}_" if worker.isalnum() else ""
        self.name = f"plugpay_test_{tag}{uuid.uuid4().hex[:10]}"
        self.url = f"{base}/{self.name}"
        self._run_admin(f'CREATE DATABASE "{self.name}"')
        upgrade(self.url)

    def _run_admin(self, statement: str) -> None:
        import asyncio

        import asyncpg

        async def go() -> None:
            dsn = os.environ["PLUGPAY_TEST_DATABASE_URL"].replace(
                "postgresql+asyncpg", "postgresql"
            )
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(go())

    def fresh(self) -> str:
        import asyncio

        import asyncpg

        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)

        async def go() -> None:
            conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg", "postgresql"))
            try:
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
            finally:
                await conn.close()

        asyncio.run(go())
        return self.url

    def drop(self) -> None:
        self._run_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
