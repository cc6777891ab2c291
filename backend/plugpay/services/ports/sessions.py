"""Charging sessions: their records and the store behind them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from plugpay.services.ports.notify import PushSubscription
from plugpay.services.ports.payments import WebhookEvent


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    charger_id: str
    connector_id: int
    state: str
    owner_hash: str
    lang: str
    tariff_pk: int
    time_zone: str
    currency: str
    hold_minor: int
    id_tag: str
    payment_provider: str
    payment_ref: str | None
    card_brand: str | None
    card_last4: str | None
    transaction_pk: int | None
    energy_wh: int
    cost_minor: int
    power_w: int | None
    captured_minor: int | None
    breakdown: dict[str, Any] | None
    reason: str | None
    created_at: datetime
    authorized_at: datetime | None
    start_deadline: datetime | None
    started_at: datetime | None
    last_reading_at: datetime | None
    stopped_at: datetime | None
    settled_at: datetime | None
    receipt_pushed_at: datetime | None
    version: int


@dataclass(frozen=True, slots=True)
class PaymentJob:
    session_id: str
    kind: str  # capture | cancel
    amount_minor: int
    idempotency_key: str
    attempts: int
    give_up_at: datetime


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime
    energy_wh: int
    power_w: int | None


@dataclass(frozen=True, slots=True)
class TransactionInfo:
    ocpp_transaction_id: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    ended: bool
    meter_start_wh: int | None = None
    meter_stop_wh: int | None = None


class ConnectorTaken(Exception):
    """Another session already holds the connector (the database said so)."""


class SessionStore(Protocol):
    async def create(self, values: dict[str, Any]) -> None:
        """Insert a CREATED session; raise ConnectorTaken when the connector is held."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None: ...
    async def by_id_tag(self, id_tag: str) -> SessionRecord | None: ...
    async def by_transaction(self, transaction_pk: int) -> SessionRecord | None: ...
    async def by_payment_ref(self, payment_ref: str) -> SessionRecord | None: ...
    async def active_on(self, charger_id: str, connector_id: int) -> SessionRecord | None: ...
    async def transition(
        self, session_id: str, sources: frozenset[str], target: str, **values: Any
    ) -> bool:
        """Compare-and-set: move to ``target`` only from one of ``sources``; False if not."""
        ...

    async def update(self, session_id: str, **values: Any) -> None: ...
    async def update_live(self, session_id: str, **values: Any) -> SessionRecord | None:
        """Set the running figures of a CHARGING/STOPPING session; the updated session."""
        ...

    async def in_states(self, states: frozenset[str]) -> list[SessionRecord]: ...

    async def timers_due(
        self, now: datetime, unpaid_before: datetime, silent_before: datetime
    ) -> list[SessionRecord]:
        """Sessions a timer must act on: unpaid since before ``unpaid_before``, past
        their start deadline, or charging without a reading since ``silent_before``."""
        ...

    async def transaction_readings(self, transaction_pk: int) -> list[Reading]: ...
    async def transaction_info(self, transaction_pk: int) -> TransactionInfo | None: ...

    async def charger_connected(self, charger_id: str) -> bool: ...

    async def add_payment_job(self, job: PaymentJob) -> None: ...
    async def due_payment_jobs(self, now: datetime) -> list[PaymentJob]: ...
    async def payment_job(self, session_id: str) -> PaymentJob | None:
        """The session's capture or release job while it is not done."""
        ...

    async def payment_job_retry(self, session_id: str, error: str, next_at: datetime) -> None: ...
    async def payment_job_done(self, session_id: str) -> None: ...
    async def settle(
        self,
        session_id: str,
        target: str,
        captured_minor: int,
        payment_ref: str,
        currency: str,
        card_brand: str | None,
        card_last4: str | None,
    ) -> bool:
        """Record the capture in the ledger and move the session, in one transaction."""
        ...

    async def record_webhook_event(self, event: WebhookEvent, provider: str) -> bool:
        """Store the event by id; False when it was seen and processed before (a replay)."""
        ...

    async def webhook_processed(self, event_id: str) -> None: ...
    async def add_push_subscription(self, session_id: str, sub: PushSubscription) -> None: ...
    async def push_subscriptions(self, session_id: str) -> list[PushSubscription]: ...
    async def remove_push_subscription(self, session_id: str, endpoint: str) -> None: ...
    async def claim_receipt_push(self, session_id: str) -> bool:
        """True exactly once per session: the receipt notification is sent once."""
        ...

    async def add_id_tag(self, id_tag: str, note: str) -> None: ...
