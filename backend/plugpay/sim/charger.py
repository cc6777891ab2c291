"""A virtual charger: boots, reports status, takes remote start/stop, meters.

Like a real charger it keeps transaction messages (start, meter values,
stop) in a queue while it cannot reach the server, reconnects with
exponential backoff, and replays the queue in order once it is back; other
messages (heartbeats, status) are simply dropped while offline. A
transaction message the server refuses (CALLERROR) is tried again a few
times and then dropped (OCPP 1.6 §3.7.1, 2.0.1 E13), so one bad message
never blocks the queue.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import websockets
from ocpp.exceptions import OCPPError

from plugpay.sim import dialect16, dialect201
from plugpay.sim.state import ConnectorState, TransactionState, iso

log = logging.getLogger("plugpay.sim")


@dataclass
class Outbound:
    build: Callable[[bool], Any]  # offline flag -> the OCPP call
    transactional: bool
    on_result: Callable[[Any], None] | None = None
    payload: Any = None  # built once, on the first attempt, so a retry is identical
    # Queued while offline, or still queued when the connection went
    # (2.0.1 E11.FR.07): sent with offline=true.
    offline: bool = False
    attempts: int = 0


class VirtualCharger:
    def __init__(
        self,
        charger_id: str,
        url: str,
        password: str | None,
        version: str = "1.6",
        power_kw: float = 11.0,
        connectors: int = 2,
        meter_interval: float = 10.0,
        heartbeat_interval: float | None = None,
        vendor: str = "plugpay",
        model: str = "VirtualCharger",
        firmware_version: str = "1.0.0",
        max_backoff: float = 30.0,
        initial_backoff: float = 1.0,
        message_attempts: int = 3,
        message_retry_interval: float = 5.0,
    ) -> None:
        if version not in ("1.6", "2.0.1"):
            raise ValueError("version must be 1.6 or 2.0.1")
        self.charger_id = charger_id
        self.url = url.rstrip("/")
        self.password = password
        self.version = version
        self.dialect: ModuleType = dialect16 if version == "1.6" else dialect201
        self.power_w = int(power_kw * 1000)
        self.meter_interval = meter_interval
        self.heartbeat_interval = heartbeat_interval
        self.vendor, self.model, self.firmware_version = vendor, model, firmware_version
        self.max_backoff = max_backoff
        self.initial_backoff = initial_backoff
        self.message_attempts = message_attempts
        self.message_retry_interval = message_retry_interval
        self.dropped: list[Any] = []  # transaction messages the server kept refusing
        self.connectors = {n: ConnectorState(n) for n in range(1, connectors + 1)}
        self.configuration: dict[str, str] = {"MeterValueSampleInterval": str(int(meter_interval))}
        self.accepts_remote_start = True
        # The local authorisation list (SendLocalList), as a charger keeps it across
        # reboots: tag -> status, and its version.
        self.local_list: dict[str, str] = {}
        self.local_list_version = 0
        self.local_list_updates: list[str] = []  # Full | Differential, as received
        self.outbox: deque[Outbound] = deque()
        self.connected = asyncio.Event()
        self.booted = asyncio.Event()
        self.boot_status: str | None = None
        self.connection_count = 0
        self.last_error: str | None = None
        self._cp: Any = None
        self._ws: Any = None
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._away_until = 0.0

    # -- helpers used by the protocol handlers ------------------------------
    def connector(self, connector_id: int) -> ConnectorState | None:
        return self.connectors.get(connector_id)

    def connector_for_transaction(self, transaction_id: int | str) -> ConnectorState | None:
        for connector in self.connectors.values():
            tx = connector.transaction
            if tx is not None and str(tx.transaction_id) == str(transaction_id):
                return connector
        return None

    def schedule(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def queued(self) -> int:
        return len(self.outbox)

    def _enqueue(self, item: Outbound) -> None:
        if not item.transactional and not self.connected.is_set():
            return  # status and heartbeats are not kept while offline
        item.offline = not self.connected.is_set()
        self.outbox.append(item)
        self._wakeup.set()

    # -- what happens at the charger ----------------------------------------
    def apply_local_list(
        self, version: int, update_type: str, entries: list[tuple[str, str | None]]
    ) -> str:
        """SendLocalList: a Full list replaces the list; a Differential one adds,
        changes and (status None) removes entries, and needs a newer version."""
        self.local_list_updates.append(update_type)
        if update_type == "Differential" and version <= self.local_list_version:
            return "VersionMismatch"
        if update_type == "Full":
            self.local_list = {}
        for tag, status in entries:
            if status is None:
                self.local_list.pop(tag, None)
            else:
                self.local_list[tag] = status
        self.local_list_version = version
        return "Accepted"

    async def set_status(self, connector_id: int, status: str) -> None:
        connector = self.connectors[connector_id]
        connector.status = status
        self._enqueue(Outbound(lambda _: self.dialect.status(connector), transactional=False))

    async def start_transaction(
        self, connector_id: int, id_tag: str, remote_start_id: int | None = None
    ) -> TransactionState:
        """Plug in and start charging (after a remote start, or an RFID card at the charger)."""
        connector = self.connectors[connector_id]
        if connector.transaction is not None:
            raise RuntimeError(f"connector {connector_id} is busy")
        tx = TransactionState(
            id_tag=id_tag,
            started_at=datetime.now(UTC),
            meter_start_wh=connector.meter_wh,
            remote_start_id=remote_start_id,
        )
        if self.version == "2.0.1":
            tx.transaction_id = str(uuid.uuid4())
        connector.transaction = tx
        connector.power_w = self.power_w
        await self.set_status(connector_id, "Preparing")

        def started(response: Any) -> None:
            new_id = self.dialect.started_id(response)
            if new_id is not None:
                tx.transaction_id = new_id
            status = getattr(response, "id_tag_info", None) or getattr(
                response, "id_token_info", None
            )
            if status and status.get("status") not in (None, "Accepted"):
                log.warning(
                    "%s: id tag %s not accepted (%s)", self.charger_id, id_tag, status.get("status")
                )

        self._enqueue(
            Outbound(lambda offline: self.dialect.start(connector_id, tx, offline), True, started)
        )
        await self.set_status(connector_id, "Charging")
        return tx

    async def stop_transaction(self, connector_id: int, reason: str = "Local") -> None:
        connector = self.connectors[connector_id]
        tx = connector.transaction
        if tx is None or tx.stopping:
            return
        tx.stopping = True
        self._advance_meter(connector)
        at, wh = iso(), connector.meter_wh
        self._enqueue(
            Outbound(
                lambda offline: self.dialect.stop(connector_id, tx, at, wh, reason, offline), True
            )
        )
        connector.power_w = 0
        connector.transaction = None
        connector.finished.append(tx)
        await self.set_status(connector_id, "Finishing")
        await self.set_status(connector_id, "Available")

    async def triggered(self, message: str, connector_id: int | None) -> None:
        if message == "Heartbeat":
            self._enqueue(Outbound(lambda _: self.dialect.heartbeat(), False))
        elif message == "BootNotification":
            self._enqueue(Outbound(lambda _: self.dialect.boot(self), False))
        elif message == "StatusNotification":
            for connector in self.connectors.values():
                if connector_id in (None, connector.connector_id):
                    await self.set_status(connector.connector_id, connector.status)
        elif message == "MeterValues":
            for connector in self.connectors.values():
                if connector.transaction is not None and connector_id in (
                    None,
                    connector.connector_id,
                ):
                    self._send_meter(connector)

    async def update_firmware(self, steps: list[str]) -> None:
        for step in steps:
            await asyncio.sleep(0.2)
            self._enqueue(Outbound(lambda _, s=step: self.dialect.firmware_status(s), False))  # type: ignore[misc]

    def _advance_meter(self, connector: ConnectorState, seconds: float | None = None) -> None:
        tx = connector.transaction
        if tx is None:
            return
        elapsed = seconds if seconds is not None else self.meter_interval
        connector.meter_wh += int(connector.power_w * elapsed / 3600)

    def _send_meter(self, connector: ConnectorState) -> None:
        tx = connector.transaction
        if tx is None:
            return
        at, wh, power = iso(), connector.meter_wh, connector.power_w
        connector_id = connector.connector_id
        self._enqueue(
            Outbound(
                lambda offline: self.dialect.meter(connector_id, tx, at, wh, power, offline), True
            )
        )

    # -- loops --------------------------------------------------------------
    async def run(self) -> None:
        """Connect, keep connected, and serve until ``close()``."""
        meter = asyncio.get_running_loop().create_task(self._meter_loop())
        backoff = self.initial_backoff
        try:
            while not self.closing:
                away = self._away_until - asyncio.get_running_loop().time()
                if away > 0:
                    await asyncio.sleep(away)
                try:
                    await self._session()
                    backoff = self.initial_backoff
                except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                    self.last_error = str(exc)
                    log.info("%s: offline (%s); retry in %.1fs", self.charger_id, exc, backoff)
                if not self.closing:
                    await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            meter.cancel()

    @property
    def closing(self) -> bool:
        return self._stopping

    async def _session(self) -> None:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.charger_id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with websockets.connect(
            f"{self.url}/{self.charger_id}",
            subprotocols=[websockets.Subprotocol(self.dialect.SUBPROTOCOL)],
            additional_headers=headers,
            open_timeout=10,
            ping_interval=None,
        ) as ws:
            cls = self.dialect.Protocol16 if self.version == "1.6" else self.dialect.Protocol201
            cp = cls(self.charger_id, ws, response_timeout=30)
            cp.sim = self
            self._cp, self._ws = cp, ws
            loop = asyncio.get_running_loop()
            tasks = {loop.create_task(cp.start())}
            self.connection_count += 1
            self.connected.set()
            try:
                await self._on_connected()
                tasks.add(loop.create_task(self._send_loop()))
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is not None and not isinstance(error, websockets.ConnectionClosed):
                        raise error
            finally:
                self.connected.clear()
                self.booted.clear()
                for item in self.outbox:
                    if item.payload is None:
                        item.offline = True
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                self._cp = self._ws = None

    async def _on_connected(self) -> None:
        response = await self._cp.call(self.dialect.boot(self), suppress=False)
        self.boot_status = str(response.status)
        interval = int(getattr(response, "interval", 0) or 0)
        if self.heartbeat_interval is None and interval:
            self.heartbeat_interval = float(interval)
        self.booted.set()
        # Status first, then whatever waited in the queue, oldest first.
        for connector in self.connectors.values():
            self.outbox.appendleft(Outbound(lambda _, c=connector: self.dialect.status(c), False))  # type: ignore[misc]
        self._wakeup.set()

    async def _send_loop(self) -> None:
        last_heartbeat = asyncio.get_running_loop().time()
        while True:
            if not self.outbox:
                self._wakeup.clear()
                timeout = None
                if self.heartbeat_interval:
                    timeout = max(
                        0.0,
                        last_heartbeat
                        + self.heartbeat_interval
                        - asyncio.get_running_loop().time(),
                    )
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                except TimeoutError:
                    self.outbox.append(Outbound(lambda _: self.dialect.heartbeat(), False))
                    last_heartbeat = asyncio.get_running_loop().time()
                continue
            item = self.outbox[0]
            try:
                if item.payload is None:
                    item.payload = item.build(item.offline)
                response = await self._cp.call(item.payload, suppress=False)
            except OCPPError as exc:  # refused by the server, or unsendable
                item.attempts += 1
                if item.transactional and item.attempts < self.message_attempts:
                    log.warning("%s: %s refused (%s); retrying", self.charger_id, item.payload, exc)
                    await asyncio.sleep(self.message_retry_interval * item.attempts)
                    continue
                log.warning("%s: dropping %s (%s)", self.charger_id, item.payload, exc)
                self.outbox.popleft()
                if item.transactional:
                    self.dropped.append(item.payload)
                continue
            self.outbox.popleft()
            if item.on_result is not None:
                item.on_result(response)

    async def _meter_loop(self) -> None:
        while True:
            await asyncio.sleep(self.meter_interval)
            for connector in self.connectors.values():
                if connector.transaction is not None and not connector.transaction.stopping:
                    self._advance_meter(connector)
                    self._send_meter(connector)

    async def drop_connection(self) -> None:
        """Vanish from the network abruptly (the TCP connection just dies)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def vanish(self, seconds: float) -> None:
        """Drop the connection and stay away ``seconds`` (queueing as when offline)."""
        self._away_until = asyncio.get_running_loop().time() + seconds
        await self.drop_connection()

    async def close(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
        for task in list(self._tasks):
            task.cancel()
