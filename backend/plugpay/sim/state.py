"""What a virtual charger knows about each of its connectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def iso(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TransactionState:
    id_tag: str
    started_at: datetime
    meter_start_wh: int
    # 1.6: the id the server hands out (None until StartTransaction is answered,
    # e.g. while the start waits in the offline queue); 2.0.1: our own uuid.
    transaction_id: int | str | None = None
    seq_no: int = 0
    remote_start_id: int | None = None
    stopping: bool = False

    def next_seq(self) -> int:
        value = self.seq_no
        self.seq_no += 1
        return value


@dataclass
class ConnectorState:
    connector_id: int
    status: str = "Available"
    meter_wh: int = 0
    power_w: int = 0
    transaction: TransactionState | None = None
    finished: list[TransactionState] = field(default_factory=list)
