"""Benchmark: live (incremental) pricing versus re-pricing a whole session.

A 12-hour session with one meter reading a minute (720 live updates) on a
time-of-use tariff with ENERGY, TIME, PARKING_TIME and FLAT components: 8 h of
charging at about 11 kW from 18:00 local, crossing the 22:00 tariff switch and
midnight, then 4 h plugged in without charging.

Each live update is ``pricer.add(sample)`` followed by ``pricer.breakdown()``
(the figure the driver's live page shows). The full re-price is
``price_session`` over all 720 samples, which is what an update would cost
without the incremental engine.

Run: python bench/tariff_pricing.py
Targets: a live update <= 20 us, and >= 50x cheaper than a full re-price.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from plugpay.domain.tariff import (
    IncrementalPricer,
    Sample,
    Tariff,
    breakdown_to_json,
    parse_tariff,
    price_session,
)

Clock = Callable[[], int]

TARGET_UPDATE_US = 20.0
TARGET_RATIO = 50.0
ROUNDS = 15

TZ = ZoneInfo("Europe/Berlin")
TIME_OF_USE = {
    "id": "bench-tou",
    "currency": "EUR",
    "max_price": {"excl_vat": 200, "incl_vat": 238},
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.39, "vat": 19, "step_size": 1},
                {"type": "TIME", "price": 1.20, "vat": 19, "step_size": 60},
                {"type": "PARKING_TIME", "price": 6.00, "vat": 19, "step_size": 300},
            ],
            "restrictions": {"start_time": "07:00", "end_time": "22:00"},
        },
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.29, "vat": 19, "step_size": 1},
                {"type": "TIME", "price": 0.60, "vat": 19, "step_size": 60},
                {"type": "PARKING_TIME", "price": 1.20, "vat": 19, "step_size": 300},
            ],
            "restrictions": {"start_time": "22:00", "end_time": "07:00"},
        },
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 19, "step_size": 1}]},
    ],
}


def session_samples() -> list[Sample]:
    start = datetime(2024, 3, 14, 18, 0, tzinfo=TZ).astimezone(UTC)
    samples = []
    energy = 1_234_567  # an absolute meter register
    for minute in range(721):
        charging = minute < 8 * 60
        samples.append(
            Sample(
                at=start + timedelta(minutes=minute, seconds=minute % 7),
                energy_wh=energy,
                charging=charging,
                power_w=11_000 + (minute % 13) * 10 if charging else 0,
            )
        )
        if charging:
            energy += 183 + minute % 3
    return samples


def live_updates(tariff: Tariff, samples: list[Sample], clock: Clock) -> tuple[float, float]:
    """Mean microseconds per live update: (add + breakdown, add only)."""
    pricer = IncrementalPricer(tariff, TZ, samples[0].at)
    pricer.add(samples[0])
    begin = clock()
    for sample in samples[1:]:
        pricer.add(sample)
        pricer.breakdown()
    with_breakdown = (clock() - begin) / 1000 / (len(samples) - 1)

    pricer = IncrementalPricer(tariff, TZ, samples[0].at)
    pricer.add(samples[0])
    begin = clock()
    for sample in samples[1:]:
        pricer.add(sample)
    add_only = (clock() - begin) / 1000 / (len(samples) - 1)
    return with_breakdown, add_only


def full_reprice(tariff: Tariff, samples: list[Sample], clock: Clock) -> float:
    begin = clock()
    price_session(tariff, samples, TZ)
    return (clock() - begin) / 1000


def measure(tariff: Tariff, samples: list[Sample], clock: Clock) -> tuple[float, float, float]:
    """Fastest of ROUNDS: (us per live update, us per add, us per full re-price)."""
    gc.disable()
    try:
        updates = [live_updates(tariff, samples, clock) for _ in range(ROUNDS)]
        fulls = [full_reprice(tariff, samples, clock) for _ in range(ROUNDS)]
    finally:
        gc.enable()
    return min(u for u, _ in updates), min(a for _, a in updates), min(fulls)


def main() -> int:
    tariff = parse_tariff(TIME_OF_USE)
    samples = session_samples()
    # The same figures both ways, or the comparison means nothing.
    pricer = IncrementalPricer(tariff, TZ)
    for sample in samples:
        pricer.add(sample)
    final = pricer.breakdown()
    assert final == price_session(tariff, samples, TZ)

    live_updates(tariff, samples, time.perf_counter_ns)  # warm caches (compiled tariff, ...)
    full_reprice(tariff, samples, time.perf_counter_ns)
    # CPU time of this process is the cost of the code even on a busy machine;
    # wall-clock time is shown beside it. Fastest of ROUNDS rounds each.
    update_us, add_us, full_us = measure(tariff, samples, time.process_time_ns)
    wall_update, wall_add, wall_full = measure(tariff, samples, time.perf_counter_ns)
    ratio = full_us / update_us

    total = breakdown_to_json(final)
    print(f"session: {len(samples)} samples (12 h, one a minute), tariff {tariff.id}")
    print(f"final price: {total['total_incl_vat']} {total['currency']} incl. VAT")
    print(f"fastest of {ROUNDS} rounds, Python {sys.version.split()[0]}; CPU time (wall clock)")
    print()
    ok_update = update_us <= TARGET_UPDATE_US
    ok_ratio = ratio >= TARGET_RATIO
    print(
        f"live update (add + breakdown): {update_us:8.2f} us ({wall_update:.2f})   "
        f"target <= {TARGET_UPDATE_US:.0f} us   {'OK' if ok_update else 'MISSED'}"
    )
    print(f"  of which add(sample):        {add_us:8.2f} us ({wall_add:.2f})")
    print(f"full re-price of the session:  {full_us:8.1f} us ({wall_full:.1f})")
    print(
        f"ratio full / live update:      {ratio:8.1f} x  ({wall_full / wall_update:.1f})   "
        f"target >= {TARGET_RATIO:.0f} x    {'OK' if ok_ratio else 'MISSED'}"
    )
    return 0 if ok_update and ok_ratio else 1


if __name__ == "__main__":
    raise SystemExit(main())
