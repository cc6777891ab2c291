"""Checks on payload fields that the OCPP schemas leave open.

The schemas say "integer" without bounds, and JSON allows 1.0 for 1. Values
that cannot be what they claim (a connector number beyond 2**31, a negative
meter register) are refused with PropertyConstraintViolation before they
reach the database; meter values that cannot be read are reported for review
instead, because the charger must still get its answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plugpay.domain.metering import MeterSample
from plugpay.ocpp.framing import FrameError
from plugpay.ocpp.meter import normalise

if TYPE_CHECKING:
    from plugpay.ocpp.connection import ChargerConnection

MAX_INT32 = 2**31 - 1
MAX_REGISTER_WH = 10**12  # 1 TWh: beyond any real meter


def bounded(value: Any, name: str, low: int = 0, high: int = MAX_INT32) -> int:
    """``value`` as an int within [low, high]; FrameError(property) otherwise."""
    number = int(value)  # the schema has checked it is an integer (maybe written 1.0)
    if not low <= number <= high:
        raise FrameError("property", f"{name} {number} is out of range")
    return number


def register(value: Any, name: str) -> int:
    """A meter register in Wh (meterStart, meterStop)."""
    return bounded(value, name, 0, MAX_REGISTER_WH)


async def readings(
    conn: ChargerConnection, action: str, meter_values: Iterable[dict[str, Any]]
) -> list[MeterSample]:
    """Normalised samples of ``meter_values``; what could not be read goes to review."""
    readout = normalise(meter_values)
    if readout.problems:
        await conn.services.chargers.report(
            conn.charger_id,
            "unreadable_meter_value",
            {"action": action, "problems": readout.problems[:20]},
        )
    return readout.samples
