"""A fresh PostgreSQL database for one benchmark server: created, then dropped.

The server at ``--pg-url`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``,
trust auth) gets a database named after the benchmark's process and a
purpose; it is dropped (``WITH (FORCE)``) when the benchmark ends, also
after an error or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin(url: str, statement: str) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.execute(statement)
        finally:
            await conn.close()

    return asyncio.run(go())


def available(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        _admin(url, "SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def fresh_database(url: str, purpose: str) -> Iterator[str]:
    """An empty database; yields its SQLAlchemy URL (asyncpg driver)."""
    base, _, _ = url.rpartition("/")
    name = f"plugpay_bench_{os.getpid()}_{purpose}"
    _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        with contextlib.suppress(Exception):
            _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def counts(sqlalchemy_url: str, queries: dict[str, str]) -> dict[str, int]:
    """``{name: first column of the first row}`` of each query."""
    import asyncpg

    async def go() -> dict[str, int]:
        conn = await asyncpg.connect(sqlalchemy_url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return {k: int(await conn.fetchval(q)) for k, q in queries.items()}
        finally:
            await conn.close()

    return asyncio.run(go())
