"""A bare OCPP-J charger over a real WebSocket, for tests that need exact frames.

Unlike the virtual charger it sends precisely what the test writes: repeated
messages, garbage, out-of-order events. Calls from the server are queued for
the test to answer (or answered at once by ``auto_answer``).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from sqlalchemy import Table, func, select
from websockets.asyncio.client import ClientConnection

from plugpay.runtime import Runtime
from plugpay.store import tables as t

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
_ids = itertools.count(1)


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class OcppClient:
    def __init__(
        self,
        ws: ClientConnection,
        version: str,
        auto_answer: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> None:
        self.ws = ws
        self.version = version
        self.auto_answer = auto_answer
        self.answers: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.server_calls: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(
        cls,
        url: str,
        charger_id: str,
        password: str | None,
        version: str = "1.6",
        *,
        auto_answer: Callable[[str, dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> OcppClient:
        headers = basic_auth(charger_id, password) if password is not None else {}
        ws = await websockets.connect(
            f"{url}/{charger_id}",
            subprotocols=[websockets.Subprotocol(SUBPROTOCOL[version])],
            additional_headers=headers,
            open_timeout=5,
            ping_interval=None,
        )
        return cls(ws, version, auto_answer)

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                frame = json.loads(message)
                if frame[0] == 2:
                    answer = self.auto_answer(frame[2], frame[3]) if self.auto_answer else None
                    if answer is not None:
                        await self.ws.send(json.dumps([3, frame[1], answer]))
                    else:
                        await self.server_calls.put(frame)
                else:
                    await self.answers.put(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def next_answer(self, timeout: float = 5.0) -> list[Any]:
        return await asyncio.wait_for(self.answers.get(), timeout)

    async def no_answer(self, wait: float = 0.3) -> None:
        """Assert that nothing is answered within ``wait`` seconds."""
        try:
            frame = await asyncio.wait_for(self.answers.get(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected answer {frame}")

    async def call_frame(
        self, action: str, payload: Any, unique_id: str | None = None
    ) -> list[Any]:
        """Send a CALL; return the whole answer frame ([3, id, {...}] or [4, id, code, ...])."""
        unique_id = unique_id or f"m{next(_ids)}"
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        frame = await self.next_answer()
        assert frame[1] == unique_id, frame
        return frame

    async def call(self, action: str, payload: Any, unique_id: str | None = None) -> Any:
        """Send a CALL and return the CALLRESULT payload (fails on a CALLERROR)."""
        frame = await self.call_frame(action, payload, unique_id)
        assert frame[0] == 3, f"{action} answered {frame}"
        return frame[2]

    async def server_call(self, timeout: float = 5.0) -> list[Any]:
        return await asyncio.wait_for(self.server_calls.get(), timeout)

    async def answer(self, frame: list[Any], payload: dict[str, Any]) -> None:
        await self.ws.send(json.dumps([3, frame[1], payload]))

    async def heartbeat_works(self) -> bool:
        result = await self.call("Heartbeat", {})
        return "currentTime" in result

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)


async def rows(runtime: Runtime, table: Table, *where: Any) -> list[dict[str, Any]]:
    """Rows of ``table`` once everything buffered is written, oldest first."""
    await runtime.writer.commit()
    query = select(table).where(*where)
    if "id" in table.c:
        query = query.order_by(table.c.id)
    async with runtime.db.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


STATE_TABLES = (
    t.transactions,
    t.meter_readings,
    t.transaction_messages,
    t.review_items,
    t.id_tags,
)


async def counts(runtime: Runtime, tables: Iterable[Table] = STATE_TABLES) -> dict[str, int]:
    """Row counts per table: compare before and after to prove nothing was stored."""
    await runtime.writer.commit()
    result = {}
    async with runtime.db.connect() as conn:
        for table in tables:
            result[table.name] = int(await conn.scalar(select(func.count()).select_from(table)))
    return result


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Poll an async predicate until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def tag_status(info: dict[str, Any]) -> dict[str, Any]:
    """idTagInfo / idTokenInfo without the cache expiry an accepted tag carries (which
    must be there, within a day from now)."""
    rest = dict(info)
    until = rest.pop("expiryDate", None) or rest.pop("cacheExpiryDateTime", None)
    if rest.get("status") == "Accepted":
        assert until is not None, info
        when = datetime.fromisoformat(str(until).replace("Z", "+00:00"))
        assert datetime.now(UTC) < when <= datetime.now(UTC) + timedelta(days=1, minutes=1)
    return rest
