"""What the live page shows of a session, and how it reaches the driver's stream."""

from __future__ import annotations

import logging
from typing import Any

from plugpay.services.ports import LiveBus, SessionRecord

log = logging.getLogger(__name__)


def snapshot(record: SessionRecord) -> dict[str, Any]:
    """Everything the live page shows; every update is a full snapshot (safe to drop or repeat)."""
    return {
        "id": record.version,
        "state": record.state,
        "energy_wh": record.energy_wh,
        "power_w": record.power_w,
        "cost_minor": record.cost_minor,
        "hold_minor": record.hold_minor,
        "currency": record.currency,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "stopped_at": record.stopped_at.isoformat() if record.stopped_at else None,
        "last_reading_at": record.last_reading_at.isoformat() if record.last_reading_at else None,
        "captured_minor": record.captured_minor,
        "reason": record.reason,
    }


async def publish(live: LiveBus, record: SessionRecord) -> None:
    """Tell the driver's stream; best effort (a stream that missed it reads the
    session again when it reconnects)."""
    try:
        await live.publish(record.id, snapshot(record))
    except Exception:
        log.warning("live update of session %s not published", record.id, exc_info=True)
