"""Meter samples and the plausibility of an energy register.

Energy is integer Wh as read from the meter register. A register that goes
backwards, or rises faster than any charger could deliver, is kept for the
record but flagged, and never priced.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

# Highest power we accept as physically plausible between two readings
# (megawatt charging exists; anything beyond is a broken or reset meter).
MAX_PLAUSIBLE_POWER_W = 1_500_000
# Small jumps between close readings are rounding, not a broken meter.
JUMP_TOLERANCE_WH = 1_000

FLAG_BACKWARDS = "register_backwards"
FLAG_JUMP = "implausible_jump"


class MeterSample(msgspec.Struct, frozen=True, gc=False):
    """One instant of meter data, normalised: integer Wh, W, mA; UTC time.

    A frozen struct rather than a frozen dataclass: every meter reading makes
    one, and a frozen dataclass takes a dozen times longer to build."""

    at: datetime
    energy_wh: int | None = None
    power_w: int | None = None
    current_ma: int | None = None
    soc: int | None = None
    context: str | None = None


def register_flag(
    previous_wh: int | None,
    previous_at: datetime | None,
    energy_wh: int | None,
    at: datetime,
) -> str:
    """Return "" when the new register value is plausible, else the reason."""
    if energy_wh is None or previous_wh is None or previous_at is None:
        return ""
    delta = energy_wh - previous_wh
    if delta < 0:
        return FLAG_BACKWARDS
    seconds = abs((at - previous_at).total_seconds())
    ceiling = MAX_PLAUSIBLE_POWER_W * seconds / 3600 + JUMP_TOLERANCE_WH
    return FLAG_JUMP if delta > ceiling else ""
