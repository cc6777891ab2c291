"""OCPP transactions as the gateway records them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import msgspec

from plugpay.domain.metering import MeterSample


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
