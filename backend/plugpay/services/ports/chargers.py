"""Chargers: registration, connections, the message log and commands to chargers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from plugpay.services.ports.jobs import NewJob


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


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    charger_id: str
    direction: str  # "in" | "out"
    message_type: int | None
    unique_id: str | None
    action: str | None
    frame: str
    at: datetime


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
        self, charger_id: str, info: BootInfo, status: str, at: datetime, job: NewJob | None = None
    ) -> None:
        """``job``: what a boot sets off (its local list checked), in the same transaction."""
        ...

    def record_heartbeat(self, charger_id: str, at: datetime) -> None: ...
    async def record_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str | None, at: datetime
    ) -> None: ...
    async def record_firmware_status(self, charger_id: str, status: str, at: datetime) -> None: ...
    async def id_tag_status(self, id_tag: str, charger_id: str | None = None) -> str:
        """Accepted / Blocked / Expired / Invalid / NoCredit, as the tag would be at
        ``charger_id`` (a paid session's token is valid at its own charger only)."""
        ...

    async def id_tag_lookup(
        self, id_tag: str, charger_id: str | None = None
    ) -> tuple[str, datetime | None]:
        """The status as OCPP 2.0.1 names it (Unknown for a tag never seen, NoCredit for
        a driver's card with no saved card to charge), and the tag's expiry."""
        ...

    async def add_id_tag(
        self, id_tag: str, status: str = "Accepted", note: str | None = None
    ) -> None: ...
    async def add_review(self, charger_id: str, kind: str, detail: dict[str, Any]) -> None: ...
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
