"""Faults to inject into a running server: a payment provider that cannot be reached,
a charger that accepts a remote start but does not start, a charger cut off the network."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from plugpay.services.ports import (
    HoldRequest,
    PaymentGateway,
    PaymentState,
    PaymentUnavailable,
    RefundState,
    WebhookEvent,
)
from plugpay.sim.charger import VirtualCharger
from plugpay.sim.state import ConnectorState, TransactionState

UNREACHABLE = "ws://127.0.0.1:9/ocpp"  # the discard port: nothing listens there


@dataclass
class UnreachableProvider:
    """Wraps the real gateway; its next ``failures`` captures and releases fail as if
    the provider could not be reached. Every call is recorded with its idempotency key."""

    real: PaymentGateway
    failures: int = 0
    calls: list[tuple[str, str, int, str]] = field(default_factory=list)  # kind, ref, amount, key

    @property
    def name(self) -> str:
        return self.real.name

    @property
    def publishable_key(self) -> str | None:
        return self.real.publishable_key

    def _fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise PaymentUnavailable("connection refused (test)")

    async def create_hold(self, request: HoldRequest) -> PaymentState:
        return await self.real.create_hold(request)

    async def get(self, ref: str) -> PaymentState:
        return await self.real.get(ref)

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        self.calls.append(("capture", ref, amount_minor, idempotency_key))
        self._fail()
        return await self.real.capture(ref, amount_minor, idempotency_key)

    async def cancel(self, ref: str, idempotency_key: str) -> PaymentState:
        self.calls.append(("cancel", ref, 0, idempotency_key))
        self._fail()
        return await self.real.cancel(ref, idempotency_key)

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        return self.real.parse_webhook(payload, signature_header)

    async def client_secret(self, ref: str) -> str | None:
        return await self.real.client_secret(ref)

    async def refund(
        self, ref: str, amount_minor: int, idempotency_key: str, reason: str | None = None
    ) -> RefundState:
        self.calls.append(("refund", ref, amount_minor, idempotency_key))
        self._fail()
        return await self.real.refund(ref, amount_minor, idempotency_key, reason)

    def __getattr__(self, name: str) -> Any:
        # Saved cards, customers and reads go straight to the real provider.
        if name == "real":
            raise AttributeError(name)
        return getattr(self.real, name)


class HesitantCharger(VirtualCharger):
    """Accepts every remote start but starts nothing until ``start_held()`` is called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[tuple[int, str, int | None]] = []

    async def start_transaction(
        self, connector_id: int, id_tag: str, remote_start_id: int | None = None
    ) -> TransactionState:
        self.held.append((connector_id, id_tag, remote_start_id))
        # Nothing starts; the remote start handler that calls this ignores the result.
        return TransactionState(id_tag=id_tag, started_at=datetime.now(UTC), meter_start_wh=0)

    async def start_held(self) -> TransactionState:
        connector_id, id_tag, remote_start_id = self.held.pop(0)
        return await super().start_transaction(connector_id, id_tag, remote_start_id)


class StubbornCharger(VirtualCharger):
    """Refuses the next ``refusals`` remote stops, and charges on."""

    refusals = 0

    def connector_for_transaction(self, transaction_id: int | str) -> ConnectorState | None:
        if self.refusals > 0:
            self.refusals -= 1
            return None  # "no such transaction here": the stop is rejected
        return super().connector_for_transaction(transaction_id)


async def cut_off(sim: VirtualCharger) -> str:
    """Take the charger off the network: the connection dies and reconnects fail.
    Transaction messages queue up in the charger meanwhile. Returns its URL."""
    url = sim.url
    sim.url = UNREACHABLE
    await sim.drop_connection()
    for _ in range(200):
        if not sim.connected.is_set():
            return url
        await asyncio.sleep(0.01)
    raise AssertionError("the charger did not notice its connection died")


def reconnect(sim: VirtualCharger, url: str) -> None:
    """Let the charger reach the server again (it retries on its own, ≤ max_backoff)."""
    sim.url = url
