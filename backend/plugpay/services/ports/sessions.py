"""Charging sessions: their records and the store behind them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from plugpay.services.ports.notify import PushSubscription


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
    reason_detail: str | None
    deadline_at: datetime | None
    created_at: datetime
    authorized_at: datetime | None
    start_deadline: datetime | None
    started_at: datetime | None
    last_reading_at: datetime | None
    stop_asked_at: datetime | None
    stopped_at: datetime | None
    settled_at: datetime | None
    receipt_pushed_at: datetime | None
    version: int
    receipt_no: int | None = None  # gapless, once a payment was captured
    account_id: int | None = None  # the driver account that owns it, if any


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
    charger_id: str | None = None
    connector_id: int | None = None


class ConnectorTaken(Exception):
    """Another session already holds the connector (the database said so)."""


class SessionStore(Protocol):
    """Reads of sessions, and the live figures written at every reading.

    Every other change to a session goes through a unit of work
    (:class:`SessionRepository`), with the jobs that must follow it.
    """

    async def get(self, session_id: str) -> SessionRecord | None: ...
    async def by_transaction(self, transaction_pk: int) -> SessionRecord | None: ...
    async def by_id_tag(self, id_tag: str) -> SessionRecord | None: ...
    async def active_on(self, charger_id: str, connector_id: int) -> SessionRecord | None: ...
    async def of_owner(
        self, owner_hashes: Sequence[str], account_id: int | None = None, limit: int = 20
    ) -> list[SessionRecord]:
        """Sessions of any of ``owner_hashes`` (one browser's) that no account claimed,
        and the account's, newest first."""
        ...

    async def update_live(self, session_id: str, **values: Any) -> SessionRecord | None:
        """Set the running figures of a CHARGING/STOPPING session; the updated session."""
        ...

    async def transaction_readings(self, transaction_pk: int) -> list[Reading]: ...
    async def transaction_info(self, transaction_pk: int) -> TransactionInfo | None: ...
    async def push_subscriptions(self, session_id: str) -> list[PushSubscription]: ...
    async def remove_push_subscription(self, session_id: str, endpoint: str) -> None: ...


class SessionRepository(Protocol):
    """Sessions inside a unit of work. ``get`` locks the row until the commit
    (PostgreSQL ``FOR UPDATE``; SQLite holds its write lock for the whole unit)."""

    async def get(self, session_id: str) -> SessionRecord | None: ...
    async def by_id_tag(self, id_tag: str) -> SessionRecord | None: ...
    async def by_transaction(self, transaction_pk: int) -> SessionRecord | None: ...
    async def by_payment_ref(self, payment_ref: str) -> SessionRecord | None: ...
    async def create(self, values: dict[str, Any]) -> SessionRecord:
        """Insert a CREATED session; raise ConnectorTaken when the connector is held."""
        ...

    async def move(self, record: SessionRecord, target: str, **values: Any) -> SessionRecord:
        """Move ``record`` to ``target``: the transition table decides where it may
        come from (InvalidTransition otherwise); StaleSession when it moved meanwhile."""
        ...

    async def update(self, record: SessionRecord, **values: Any) -> SessionRecord: ...
    async def next_receipt_number(self) -> int:
        """The next receipt number: taken in this transaction, given back if it rolls back."""
        ...

    async def stopping_on(self, charger_id: str) -> list[str]:
        """Ids of the charger's sessions waiting for their stop."""
        ...

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of the sessions whose deadline has passed, oldest first."""
        ...

    async def transaction_info(self, transaction_pk: int) -> TransactionInfo | None: ...
    async def charger_connected(self, charger_id: str) -> bool: ...
    async def add_push_subscription(self, session_id: str, sub: PushSubscription) -> None: ...
    async def add_id_tag(self, id_tag: str, note: str, charger_id: str | None = None) -> None:
        """A paid session's token: accepted on ``charger_id`` only, until revoked."""
        ...

    async def revoke_id_tag(self, id_tag: str) -> None: ...
    async def alert(self, session: SessionRecord, kind: str, detail: dict[str, Any]) -> None:
        """Keep something for an operator to look at (and log it)."""
        ...


class StaleSession(Exception):
    """The session changed between reading and writing it (the unit rolls back)."""
