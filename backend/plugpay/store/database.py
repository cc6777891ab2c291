"""The async engine and short transactions.

SQLite (the embedded default) runs on one connection in WAL mode: every
statement is serialised, so there is no "database is locked" under load.
That connection never lets a commit checkpoint the WAL: a checkpoint copies
megabytes into the database file inside whichever commit crosses the
threshold, and every reading waiting behind that commit would wait tens of
milliseconds. ``Checkpointer`` does the copying from its own connection on a
thread, alongside the writes; then the batch writer checkpoints the little
written meanwhile, between two batches, so that its next write starts the WAL
file over instead of growing it without end under steady load.
PostgreSQL gets an ordinary connection pool whose check-out costs no round
trip: a connection the server closed (a restart, an idle timeout) is known
closed to asyncpg as soon as its socket is, and is replaced then; one that
breaks mid-use is dropped by the error it raises.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy import event, exc, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# PostgreSQL connections per instance: enough that the chargers' short transactions
# never wait for one, and kept open (a connection opened per transaction costs the
# server a process). Two instances stay within PostgreSQL's default of 100.
POOL_SIZE = 40
POOL_OVERFLOW = 5
# How long a SQLite statement waits for another process's lock before failing.
BUSY_TIMEOUT_MS = 10_000


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        # No rollback when a connection goes back to the pool: SQLAlchemy's
        # Connection rolls back its own transaction on close, the batch writer
        # commits or rolls back in the same call that began (and rolls back
        # whatever it finds left open); the reset would cost a trip to the
        # database thread per batch for nothing.
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            pool_reset_on_return=None,
            **kwargs,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # 64 MiB of page cache (the default is 2 MiB): the indexes the hot
            # writes touch stay in memory as the tables grow.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # see Checkpointer
            cursor.close()

        return engine
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, **kwargs)
    if engine.dialect.driver == "asyncpg":

        @event.listens_for(engine.sync_engine, "checkout")
        def _closed(
            _dbapi: object, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
        ) -> None:
            # SQLAlchemy's pre-ping would cost BEGIN, a statement and ROLLBACK
            # at every check-out; the socket's state costs nothing.
            if record.driver_connection is None or record.driver_connection.is_closed():
                raise exc.DisconnectionError("the server closed this connection")

    return engine


log = logging.getLogger(__name__)

# How often the WAL is copied into the database file (and so how far it grows).
CHECKPOINT_SECONDS = 1.0


class Checkpointer:
    """Checkpoints a SQLite database's WAL once a second from its own connection,
    on a worker thread. PASSIVE: it never waits for, nor blocks, the writer; what
    it cannot copy now it copies next time. Closing a database's last
    connection checkpoints the rest, so a process without one loses nothing.

    A background checkpoint never catches up with a busy writer (frames keep
    coming while it copies), and SQLite only starts the WAL file over when every
    frame has been copied. So after each one ``catch_up`` is set: the writer's
    connection then checkpoints the rest itself before its next batch
    (``BatchWriter``), and that batch's first write restarts the WAL.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.catch_up = False
        self._connection: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        # A cancelled task leaves its checkpoint running on the worker thread:
        # closing the connection under it would crash the process.
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)

    def checkpoint(self) -> tuple[int, int, int]:
        """(busy, WAL frames, frames copied), as SQLite reports them."""
        with self._lock:
            if self._closed:
                return 1, 0, 0
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
            row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        busy, frames, copied = int(row[0]), int(row[1]), int(row[2])
        if not busy and frames > 0:
            self.catch_up = True
        return busy, frames, copied

    def _close_connection(self) -> None:
        with self._lock:  # after a checkpoint still running, never under it
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.to_thread(self._close_connection)


class Database:
    """Owns the engine; hands out connections inside a transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        path = make_url(url).database if self.is_sqlite else None
        self.checkpointer = Checkpointer(path) if path and path != ":memory:" else None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield connection

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def start(self) -> None:
        """Start the background work a running server needs (the WAL checkpoints)."""
        if self.checkpointer is not None:
            self.checkpointer.start()

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await self.checkpointer.close()
        await self.engine.dispose()
