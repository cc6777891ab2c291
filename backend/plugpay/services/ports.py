"""The Protocols that adapters implement, and the plain data that crosses them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from plugpay.domain.metering import MeterSample


# -- data -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewCharger:
    id: str
    password_hash: str
    connector_count: int
    site_name: str | None = None
    time_zone: str = "UTC"


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


@dataclass(frozen=True, slots=True)
class FlaggedSample:
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
    async def set_connected(self, charger_id: str, version: str | None, at: datetime) -> None: ...
    async def set_disconnected(self, charger_id: str, at: datetime) -> None: ...
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
    async def recent(self, charger_id: str, limit: int) -> list[LoggedMessage]: ...


class ChargerLink(Protocol):
    """Reach a connected charger: send a CALL and await its answer."""

    def version(self, charger_id: str) -> str | None: ...

    async def call(
        self, charger_id: str, action: str, payload: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]: ...
