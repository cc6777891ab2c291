"""The Protocols that adapters implement, and the plain data that crosses them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import msgspec

from plugpay.domain.metering import MeterSample


# -- data -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewCharger:
    id: str
    password_hash: str
    connector_count: int
    site_name: str | None = None
    time_zone: str = "UTC"
    standard: str | None = None  # OCPI ConnectorType, e.g. IEC_62196_T2
    max_power_w: int | None = None


@dataclass(frozen=True, slots=True)
class BootInfo:
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None


@dataclass(frozen=True, slots=True)
class ConnectorView:
    connector_id: int
    status: str
    error_code: str | None
    status_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChargerView:
    id: str
    site: str | None
    connected: bool
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    firmware_status: str | None
    boot_status: str | None
    last_boot_at: datetime | None
    last_heartbeat_at: datetime | None
    connectors: tuple[ConnectorView, ...] = ()


class FlaggedSample(msgspec.Struct, frozen=True, gc=False):
    """A sample and why it is not priced ("" when it is plausible)."""

    sample: MeterSample
    flag: str = ""


@dataclass(frozen=True, slots=True)
class TransactionRef:
    pk: int
    charger_id: str
    connector_id: int
    ended: bool
    last_reading_at: datetime | None
    last_energy_wh: int | None


@dataclass(frozen=True, slots=True)
class StartInput:
    """A 1.6 StartTransaction."""

    charger_id: str
    connector_id: int
    id_tag: str
    at: datetime
    meter_start_wh: int


@dataclass(frozen=True, slots=True)
class StopInput:
    """A 1.6 StopTransaction."""

    charger_id: str
    transaction_pk: int
    at: datetime
    meter_stop_wh: int
    reason: str | None
    id_tag: str | None
    samples: Sequence[FlaggedSample] = ()


@dataclass(frozen=True, slots=True)
class EventInput:
    """A 2.0.1 TransactionEvent."""

    charger_id: str
    ocpp_transaction_id: str
    event_type: str  # Started | Updated | Ended
    seq_no: int
    at: datetime
    offline: bool
    connector_id: int | None
    id_tag: str | None
    stopped_reason: str | None
    samples: Sequence[FlaggedSample] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    charger_id: str
    direction: str  # "in" | "out"
    message_type: int | None
    unique_id: str | None
    action: str | None
    frame: str
    at: datetime


# -- ports ------------------------------------------------------------------
class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class ChargerStore(Protocol):
    async def add(self, charger: NewCharger) -> None: ...
    async def password_hash(self, charger_id: str) -> str | None: ...
    async def list_chargers(self) -> list[ChargerView]: ...
    async def get(self, charger_id: str) -> ChargerView | None: ...
    async def set_connected(
        self, charger_id: str, version: str | None, at: datetime, instance: str | None = None
    ) -> None: ...
    async def set_disconnected(
        self, charger_id: str, at: datetime, connected_at: datetime | None = None
    ) -> None:
        """Mark the charger disconnected, unless a connection newer than the one that
        began at ``connected_at`` exists (it reconnected, maybe to another instance)."""
        ...

    async def record_boot(
        self, charger_id: str, info: BootInfo, status: str, at: datetime
    ) -> None: ...
    def record_heartbeat(self, charger_id: str, at: datetime) -> None: ...
    async def record_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str | None, at: datetime
    ) -> None: ...
    async def record_firmware_status(self, charger_id: str, status: str, at: datetime) -> None: ...
    async def id_tag_status(self, id_tag: str) -> str: ...
    async def add_id_tag(
        self, id_tag: str, status: str = "Accepted", note: str | None = None
    ) -> None: ...
    async def add_review(self, charger_id: str, kind: str, detail: dict[str, Any]) -> None: ...
    async def flush(self) -> None: ...


class TransactionStore(Protocol):
    async def start(self, start: StartInput, samples: Sequence[FlaggedSample]) -> tuple[int, bool]:
        """Insert or find the transaction for a 1.6 start; (pk, created)."""
        ...

    async def stop(self, stop: StopInput, response: dict[str, Any]) -> dict[str, Any] | None:
        """Apply a 1.6 stop once; the stored answer; None when the transaction is unknown."""
        ...

    async def find(self, charger_id: str, pk: int) -> TransactionRef | None: ...
    async def find_by_ocpp_id(self, charger_id: str, ocpp_id: str) -> TransactionRef | None: ...

    async def apply_event(self, event: EventInput, response: dict[str, Any]) -> dict[str, Any]:
        """Apply a 2.0.1 Started/Ended event once; the stored answer for a repeat."""
        ...

    def record_update(self, ref: TransactionRef, event: EventInput) -> None:
        """Buffer a 2.0.1 Updated event's readings (idempotent on seqNo and time)."""
        ...

    def record_readings(
        self, charger_id: str, connector_id: int, pk: int | None, samples: Sequence[FlaggedSample]
    ) -> None: ...

    async def flush(self) -> None: ...


class MessageLog(Protocol):
    def append(self, message: LoggedMessage) -> None: ...

    def exchange(
        self,
        charger_id: str,
        unique_id: str,
        action: str,
        frame: str,
        at: datetime,
        answer: str,
        answered_at: datetime,
    ) -> None:
        """A CALL from the charger and the answer we sent, kept together."""

    async def recent(self, charger_id: str, limit: int) -> list[LoggedMessage]: ...


class ChargerLink(Protocol):
    """Reach a connected charger: send a CALL and await its answer."""

    async def version(self, charger_id: str) -> str | None:
        """The OCPP version of a connected charger (on any instance); None when offline."""
        ...

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]: ...


# -- payments ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Pre-authorise ``amount_minor`` (manual capture) for one charging session."""

    session_id: str
    amount_minor: int
    currency: str  # ISO 4217, upper case
    description: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PaymentState:
    """What the payment provider says about a hold; provider objects never leave payments/."""

    ref: str  # Stripe PaymentIntent id, or the demo provider's id
    status: str  # requires_payment_method | requires_confirmation | requires_action |
    #              processing | requires_capture | canceled | succeeded
    amount_minor: int
    currency: str
    client_secret: str | None = None
    amount_received_minor: int = 0
    card_brand: str | None = None
    card_last4: str | None = None
    decline_message: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    payment_ref: str | None
    created: int


class InvalidWebhook(Exception):
    """Signature missing, wrong or too old; or a body that is not an event."""


class PaymentGateway(Protocol):
    name: str  # "stripe" | "demo"
    publishable_key: str | None

    async def create_hold(self, request: HoldRequest) -> PaymentState: ...
    async def get(self, ref: str) -> PaymentState: ...
    async def client_secret(self, ref: str) -> str | None:
        """What the browser needs to confirm the hold (remembered from create_hold)."""
        ...

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        """Capture ``amount_minor`` (> 0) of the hold; the rest is released."""
        ...

    async def cancel(self, ref: str, idempotency_key: str) -> PaymentState:
        """Release the whole hold."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify the signature on the raw body; raise InvalidWebhook."""
        ...


class PaymentUnavailable(Exception):
    """The provider could not be reached or answered 5xx: retry later, same idempotency key."""


class PaymentDeclined(Exception):
    """The provider refused the operation for good (message fit for the driver)."""


# -- notifications ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PushSubscription:
    endpoint: str
    p256dh: str
    auth: str


class PushSender(Protocol):
    public_key: str  # VAPID application server key (base64url, uncompressed P-256 point)

    async def send(self, subscription: PushSubscription, payload: dict[str, Any]) -> str:
        """Deliver one notification: "sent", "gone" (404/410: forget it) or "failed"."""
        ...


# -- tariffs ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredTariff:
    pk: int  # this exact version
    tariff_id: str
    version: int
    ocpi_json: str  # exact decimals, as imported


@dataclass(frozen=True, slots=True)
class ConnectorPlace:
    """Where a connector is: what the driver's page and the tariff choice need."""

    charger_id: str
    connector_id: int
    site_id: int | None
    site_name: str | None
    time_zone: str
    status: str
    connected: bool
    connector_count: int
    standard: str | None = None
    max_power_w: int | None = None


class TariffStore(Protocol):
    async def add_version(self, tariff_id: str, currency: str, ocpi_json: str) -> StoredTariff: ...
    async def latest(self, tariff_id: str) -> StoredTariff | None: ...
    async def by_pk(self, pk: int) -> StoredTariff | None: ...
    async def list_latest(self) -> list[StoredTariff]: ...
    async def assign(
        self,
        tariff_id: str,
        *,
        site_id: int | None = None,
        charger_id: str | None = None,
        connector_id: int | None = None,
        audience: str = "*",
    ) -> None: ...
    async def assignments_for(
        self, site_id: int | None, charger_id: str, connector_id: int
    ) -> list[tuple[str, str, str]]:
        """(scope, audience, tariff_id) candidates: scope is connector | charger | site."""
        ...

    async def place(self, charger_id: str, connector_id: int) -> ConnectorPlace | None: ...


# -- charging sessions ------------------------------------------------------
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


class LiveBus(Protocol):
    """Live session updates to whichever instance holds the driver's SSE stream."""

    async def publish(self, session_id: str, event: dict[str, Any]) -> None: ...
    async def subscribe(self, session_id: str) -> LiveSubscription:
        """Registered when this returns: nothing published after that is missed."""
        ...


class LiveSubscription(Protocol):
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...
    async def aclose(self) -> None: ...


class DemoCardForm(Protocol):
    """The demo provider's stand-in for the card form (only when no Stripe keys are set)."""

    async def confirm(self, ref: str, card: str) -> PaymentState: ...
    async def authenticate(self, ref: str, ok: bool) -> PaymentState: ...
