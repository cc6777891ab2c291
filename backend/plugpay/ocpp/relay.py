"""Charger commands across server instances, through Redis.

A charger's WebSocket lives on one instance; a driver's request may land on
another. When the charger is not connected here, the command is broadcast on
one Redis channel; the instance that holds the charger acknowledges at once
(with the charger's OCPP version), runs the command and publishes the answer
on the asker's reply channel. No acknowledgement in time means no instance
holds the charger: ChargerOffline.

Each instance also holds a lease in Redis (``LEASE_SECONDS``, renewed well
before it ends): an instance that crashed stops renewing it, and the others
then clear the connected flags it left on its chargers (``alive``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import msgspec
import redis.asyncio as aioredis

from plugpay.domain.errors import ChargerOffline, CommandFailed, CommandTimeout, InvalidInput
from plugpay.ocpp.registry import ConnectionRegistry, LocalChargerLink

log = logging.getLogger(__name__)
COMMANDS = "plugpay:charger-commands"
REPLIES = "plugpay:charger-replies:"
ACK_SECONDS = 2.0
LEASES = "plugpay:instance:"
LEASE_SECONDS = 60


class RedisChargerLink:
    def __init__(self, registry: ConnectionRegistry, url: str, call_timeout: float = 30.0) -> None:
        self.local = LocalChargerLink(registry)
        self.registry = registry
        self.call_timeout = call_timeout
        self.instance = registry.instance
        self._redis = aioredis.from_url(url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._waiting: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lease: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._renew()
        await self._pubsub.subscribe(COMMANDS, REPLIES + self.instance)
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read())
        self._lease = loop.create_task(self._keep_lease())

    async def close(self) -> None:
        for task in (self._reader, self._lease):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):  # going away: the lease may as well end now
            await self._redis.delete(LEASES + self.instance)
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self._redis.aclose()

    # -- leases ---------------------------------------------------------------
    async def _renew(self) -> None:
        await self._redis.set(LEASES + self.instance, b"1", ex=LEASE_SECONDS)

    async def _keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 6)
            try:
                await self._renew()
            except Exception:  # Redis away for a moment: the next renewal tries again
                log.warning("could not renew the lease of instance %s", self.instance)

    async def alive(self, instances: list[str]) -> set[str]:
        """Which of ``instances`` still hold their lease."""
        if not instances:
            return set()
        found = await self._redis.mget([LEASES + i for i in instances])
        return {i for i, value in zip(instances, found, strict=True) if value is not None}

    # -- asking ---------------------------------------------------------------
    async def version(self, charger_id: str) -> str | None:
        local = await self.local.version(charger_id)
        if local is not None:
            return local
        try:
            reply = await self._ask(charger_id, None, None, None)
        except ChargerOffline:
            return None
        return str(reply["version"])

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        if self.registry.get(charger_id) is not None:
            return await self.local.call(charger_id, action, payload, timeout)
        reply = await self._ask(charger_id, action, payload, timeout or self.call_timeout)
        return dict(reply["result"])

    async def _ask(
        self,
        charger_id: str,
        action: str | None,
        payload: dict[str, Any] | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        request_id = uuid.uuid4().hex
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiting[request_id] = queue
        try:
            await self._redis.publish(
                COMMANDS,
                msgspec.json.encode(
                    {
                        "id": request_id,
                        "reply_to": self.instance,
                        "charger_id": charger_id,
                        "action": action,
                        "payload": payload,
                        "timeout": timeout,
                    }
                ),
            )
            try:
                ack = await asyncio.wait_for(queue.get(), ACK_SECONDS)
            except TimeoutError:
                raise ChargerOffline(f"charger {charger_id} is not connected") from None
            if action is None:
                return ack
            try:
                reply = await asyncio.wait_for(
                    queue.get(), (timeout or self.call_timeout) + ACK_SECONDS
                )
            except TimeoutError:
                raise CommandTimeout(f"{charger_id} did not answer {action} in time") from None
        finally:
            self._waiting.pop(request_id, None)
        kind = reply.get("kind")
        if kind == "result":
            return reply
        error = reply.get("error", "CommandFailed")
        message = str(reply.get("message", ""))
        if error == "ChargerOffline":
            raise ChargerOffline(message)
        if error == "CommandTimeout":
            raise CommandTimeout(message)
        if error == "InvalidInput":
            raise InvalidInput(message)
        raise CommandFailed(str(reply.get("code", "GenericError")), message)

    # -- answering --------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("charger command relay: read failed; retrying")
                await asyncio.sleep(1)
                continue
            if message is None or message.get("type") != "message":
                continue
            data = msgspec.json.decode(message["data"])
            if message["channel"].decode() == COMMANDS:
                if self.registry.get(data["charger_id"]) is not None:
                    task = asyncio.get_running_loop().create_task(self._serve(data))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            else:
                queue = self._waiting.get(data.get("id", ""))
                if queue is not None:
                    queue.put_nowait(data)

    async def _serve(self, request: dict[str, Any]) -> None:
        reply_to = REPLIES + request["reply_to"]
        conn = self.registry.get(request["charger_id"])
        if conn is None:
            return
        base = {"id": request["id"]}
        await self._redis.publish(
            reply_to, msgspec.json.encode({**base, "kind": "ack", "version": conn.version})
        )
        if request["action"] is None:
            return
        try:
            result = await self.local.call(
                request["charger_id"], request["action"], request["payload"], request["timeout"]
            )
            reply: dict[str, Any] = {**base, "kind": "result", "result": result}
        except CommandFailed as exc:
            reply = {
                **base,
                "kind": "error",
                "error": "CommandFailed",
                "code": exc.code,
                "message": exc.description,
            }
        except (ChargerOffline, CommandTimeout, InvalidInput) as exc:
            reply = {**base, "kind": "error", "error": type(exc).__name__, "message": str(exc)}
        await self._redis.publish(reply_to, msgspec.json.encode(reply))
