"""The unit of work in SQL: one database transaction per use case.

SQLite: the unit starts with ``BEGIN IMMEDIATE``, taking the database's write
lock at once, so a read followed by a write can never be overtaken by another
process (a deferred transaction would fail to upgrade its lock instead).
PostgreSQL: rows the unit will change are read ``FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection

from plugpay.store.accounts import SqlAccountRepository
from plugpay.store.cards import SqlCardRepository
from plugpay.store.database import Database
from plugpay.store.jobs import SqlJobRepository
from plugpay.store.payments import SqlPaymentRepository
from plugpay.store.rfid import SqlRfidRepository
from plugpay.store.session_repository import SqlSessionRepository
from plugpay.store.webhooks import SqlWebhookRepository


class SqlUnitOfWork:
    sessions: SqlSessionRepository
    jobs: SqlJobRepository
    payments: SqlPaymentRepository
    webhooks: SqlWebhookRepository
    accounts: SqlAccountRepository
    cards: SqlCardRepository
    rfid: SqlRfidRepository

    def __init__(self, db: Database, on_jobs: Callable[[], None] | None = None) -> None:
        self.db = db
        self.on_jobs = on_jobs
        self._transaction: AbstractAsyncContextManager[AsyncConnection] | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        self._transaction = self.db.begin()
        conn = await self._transaction.__aenter__()
        try:
            if self.db.is_sqlite:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException as exc:
            await self._transaction.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self.sessions = SqlSessionRepository(conn)
        self.jobs = SqlJobRepository(conn, self.db.is_sqlite)
        self.payments = SqlPaymentRepository(conn)
        self.webhooks = SqlWebhookRepository(conn)
        self.accounts = SqlAccountRepository(conn)
        self.cards = SqlCardRepository(conn)
        self.rfid = SqlRfidRepository(conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._transaction is not None
        transaction, self._transaction = self._transaction, None
        await transaction.__aexit__(exc_type, exc, tb)  # commits, or rolls back on error
        if exc_type is None and self.jobs.added and self.on_jobs is not None:
            self.on_jobs()  # the worker here looks at once


def unit_of_work_factory(
    db: Database, on_jobs: Callable[[], None] | None = None
) -> Callable[[], SqlUnitOfWork]:
    return lambda: SqlUnitOfWork(db, on_jobs)
