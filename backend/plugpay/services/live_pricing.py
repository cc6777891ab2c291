"""Live pricing: every durable reading of a driver's session is priced and shown.

This is the hot path (a call per MeterValues), so the running figures are one
prepared UPDATE ... RETURNING and the pricer is kept in memory, rebuilt from the
stored readings after a restart or a late reading (same engine, same figure).
What it writes is a display: the bill is priced again from every stored
reading when the transaction ends (``final_price``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from plugpay.domain.metering import register_flag
from plugpay.domain.session import Reason, SessionState, Timeouts, must_stop_for_hold
from plugpay.domain.tariff import IncrementalPricer, PriceBreakdown, Sample, Tariff, price_session
from plugpay.domain.tariff.model import Dimension
from plugpay.domain.tariff.now import price_now
from plugpay.services.charging import ChargingService
from plugpay.services.ports import (
    FlaggedSample,
    LiveBus,
    LiveSubscription,
    Reading,
    SessionRecord,
    SessionStore,
    TransactionInfo,
)
from plugpay.services.snapshots import snapshot
from plugpay.services.tariffs import TariffService

S = SessionState
# A transaction without a driver's session (an RFID card, a session whose start
# is still being applied): looked up again after this many seconds.
NO_SESSION_SECONDS = 2.0


def to_sample(reading: Reading) -> Sample:
    charging = reading.power_w is None or reading.power_w > 0
    return Sample(
        at=reading.at, energy_wh=reading.energy_wh, charging=charging, power_w=reading.power_w
    )


def has_idle_fee(tariff: Tariff) -> bool:
    """Whether time plugged in without charging costs anything (a PARKING_TIME price)."""
    return any(e.component(Dimension.PARKING_TIME) is not None for e in tariff.elements)


def with_meter_stop(readings: list[Reading], info: TransactionInfo | None) -> list[Reading]:
    """The readings ending with the transaction's meterStop.

    Readings are stored once per instant, so a stop stamped with the same time as
    the last periodic sample (same second, or same millisecond) keeps that sample's
    register and loses its own; the meterStop on the transaction is the final figure.
    """
    if info is None or not info.ended or info.meter_stop_wh is None or info.stopped_at is None:
        return readings
    last = readings[-1]
    if info.stopped_at < last.at or info.meter_stop_wh <= last.energy_wh:
        return readings
    if register_flag(last.energy_wh, last.at, info.meter_stop_wh, info.stopped_at):
        return readings  # an implausible meterStop is not billed
    return [*readings, Reading(info.stopped_at, info.meter_stop_wh, 0)]


@dataclass
class LivePricing:
    store: SessionStore
    tariffs: TariffService
    charging: ChargingService
    live: LiveBus
    timeouts: Timeouts
    _pricers: dict[str, IncrementalPricer] = field(default_factory=dict)
    _tariffs: dict[int, Tariff] = field(default_factory=dict)
    _last_cost: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    # transaction -> (session id or None, when a None was looked up)
    _session_of_tx: dict[int, tuple[str | None, float]] = field(default_factory=dict)
    _charging: dict[str, SessionRecord] = field(default_factory=dict)
    _idle_told: set[str] = field(default_factory=set)  # the job's key makes it once anyway
    _drew_power: set[str] = field(default_factory=set)

    async def current(self, session_id: str) -> SessionRecord | None:
        """The session as stored now (what a live page shows first)."""
        return await self.store.get(session_id)

    async def watch(self, session_id: str) -> LiveSubscription:
        """The session's updates from now on (registered when this returns)."""
        return await self.live.subscribe(session_id)

    async def on_readings(self, transaction_pk: int, samples: Sequence[FlaggedSample]) -> None:
        """New durable readings for a transaction: price them and tell the driver."""
        session_id = await self._session_of(transaction_pk)
        if session_id is None:
            return
        # What pricing needs of the session (tariff, zone, hold) does not change
        # while it charges: read it once, then keep it with its pricer.
        record = self._charging.get(session_id) or await self.store.get(session_id)
        if record is None or record.state not in (S.CHARGING, S.STOPPING):
            return
        new = [
            Reading(f.sample.at, f.sample.energy_wh, f.sample.power_w)
            for f in samples
            if not f.flag and f.sample.energy_wh is not None
        ]
        if not new:
            return
        breakdown = await self._price_live(record, new)
        cost = breakdown.total_due().minor
        last = new[-1]
        # One statement sets the figures and returns the session as it now is (state
        # and version included), which is exactly the snapshot the driver gets.
        updated = await self.store.update_live(
            record.id,
            energy_wh=self._pricers[record.id].energy_wh,
            cost_minor=cost,
            power_w=last.power_w,
            last_reading_at=last.at,
            # Heard from the charger: the silent-charger deadline moves on while it
            # charges (by our clock: a charger's may be off by hours).
            deadline_at=datetime.now(UTC) + self.timeouts.silent,
        )
        if updated is None:  # settled or stopped meanwhile
            self._charging.pop(record.id, None)
            self._idle_told.discard(record.id)
            self._drew_power.discard(record.id)
            return
        record = self._charging[record.id] = updated
        await self.live.publish(record.id, snapshot(record))
        if last.power_w:
            self._drew_power.add(record.id)
        elif (
            last.power_w == 0
            and record.state == S.CHARGING
            and record.id in self._drew_power  # it charged, and now it has stopped
            and record.id not in self._idle_told
            and await self._idle_fee_now(record)
        ):
            self._idle_told.add(record.id)
            await self.charging.notice_idle(record.id)
        rate = self._rate(record.id, last.at, cost)
        if record.state == S.CHARGING and must_stop_for_hold(cost, record.hold_minor, rate):
            # A unit of work and a queued command: the charger's answer to this
            # message does not wait for the stop itself.
            self._charging.pop(record.id, None)
            await self.charging.stop(record.id, Reason.HOLD_LIMIT)

    async def _idle_fee_now(self, record: SessionRecord) -> bool:
        """Whether an idle fee applies to this session at this moment (its hour, and
        how far the session has come)."""
        tariff = await self.tariff_of(record)
        if not has_idle_fee(tariff):
            return False
        now = datetime.now(UTC)
        elapsed = now - (record.started_at or now)
        applying = price_now(tariff, record.time_zone, now, elapsed, record.energy_wh)
        return Dimension.PARKING_TIME in applying.elements

    async def _session_of(self, transaction_pk: int) -> str | None:
        known = self._session_of_tx.get(transaction_pk)
        if known is not None and (
            known[0] is not None or time.monotonic() - known[1] < NO_SESSION_SECONDS
        ):
            return known[0]
        found = await self.store.by_transaction(transaction_pk)
        session_id = found.id if found else None
        self._session_of_tx[transaction_pk] = (session_id, time.monotonic())
        return session_id

    def _rate(self, session_id: str, at: datetime, cost: int) -> float:
        previous = self._last_cost.get(session_id)
        self._last_cost[session_id] = (at, cost)
        if previous is None or at <= previous[0]:
            return 0.0
        return (cost - previous[1]) / max((at - previous[0]).total_seconds() / 60, 1 / 60)

    async def tariff_of(self, record: SessionRecord) -> Tariff:
        tariff = self._tariffs.get(record.tariff_pk)
        if tariff is None:
            _, tariff = await self.tariffs.version(record.tariff_pk)
            self._tariffs[record.tariff_pk] = tariff
        return tariff

    async def _price_live(self, record: SessionRecord, new: list[Reading]) -> PriceBreakdown:
        """Add the new readings to the session's pricer; rebuild it from the stored
        readings on first sight, after a restart, or when a reading arrives late."""
        assert record.transaction_pk is not None
        pricer = self._pricers.get(record.id)
        if pricer is None or pricer.last_at is None or new[0].at < pricer.last_at:
            readings = await self.store.transaction_readings(record.transaction_pk)
            info = await self.store.transaction_info(record.transaction_pk)
            started = info.started_at if info and info.started_at else readings[0].at
            pricer = IncrementalPricer(
                await self.tariff_of(record), record.time_zone, min(started, readings[0].at)
            )
            new = readings
        for reading in new:
            pricer.add(to_sample(reading))
        self._pricers[record.id] = pricer
        return pricer.breakdown()

    async def final_price(
        self, record: SessionRecord
    ) -> tuple[PriceBreakdown, int, datetime | None]:
        """The bill: the same engine over every plausible reading, in time order."""
        assert record.transaction_pk is not None
        readings = await self.store.transaction_readings(record.transaction_pk)
        info = await self.store.transaction_info(record.transaction_pk)
        if not readings:
            return PriceBreakdown(record.currency, (), Decimal(0), None), 0, None
        readings = with_meter_stop(readings, info)
        started = info.started_at if info and info.started_at else readings[0].at
        breakdown = price_session(
            await self.tariff_of(record),
            [to_sample(r) for r in readings],
            record.time_zone,
            min(started, readings[0].at),
        )
        energy = max(r.energy_wh for r in readings) - readings[0].energy_wh
        return breakdown, energy, readings[-1].at

    def forget(self, session_id: str, transaction_pk: int | None = None) -> None:
        self._pricers.pop(session_id, None)
        self._last_cost.pop(session_id, None)
        self._charging.pop(session_id, None)
        if transaction_pk is not None:
            self._session_of_tx.pop(transaction_pk, None)
