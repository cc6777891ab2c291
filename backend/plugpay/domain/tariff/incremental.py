"""Pricing that follows a session reading by reading: :class:`IncrementalPricer`.

This is the only pricing engine: the full price of a session
(:func:`plugpay.domain.tariff.price_session`) is an IncrementalPricer fed all
samples at once, so a live figure and the final bill for the same meter data
cannot differ.

Each :meth:`IncrementalPricer.add` prices only the period since the previous
sample, splitting it where a restriction starts or stops matching: at the
exact instant of a local-time boundary (17:00, midnight, a daylight saving
change) or a duration threshold, and, for a kWh threshold, at the instant the
energy crosses it, interpolated linearly within the period. Usage accumulates
per receipt line (uWh, microseconds), so :meth:`breakdown` costs a few
lines of arithmetic however long the session: O(1) per sample.

Per dimension the first element whose restrictions match applies (OCPI).
TIME counts charging time, PARKING_TIME time plugged in but not charging.
FLAT is charged once: the first FLAT component that applies at any moment of
the session (normally at its start; an element restricted to 18:00-22:00
charges its fee once the session reaches 18:00).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any

from plugpay.domain.tariff.breakdown import PriceBreakdown
from plugpay.domain.tariff.errors import PricerStateError, SessionTraceError
from plugpay.domain.tariff.model import Tariff
from plugpay.domain.tariff.restrictions import BandKey, PricingPlan
from plugpay.domain.tariff.session import Sample, as_utc, check_sample, resolve_tz
from plugpay.domain.tariff.settle import LineFigures, settle

_ONE_US = timedelta(microseconds=1)
_UWH_PER_WH = 1_000_000
_STATE_VERSION = 1


@lru_cache(maxsize=128)
def _plan(tariff: Tariff, tz: tzinfo) -> PricingPlan:
    return PricingPlan(tariff, tz)


class IncrementalPricer:
    """The price of a session so far, updated one sample at a time.

    ``started_at`` is when the session started; durations (``min_duration``,
    ``max_duration``) count from it. It defaults to the first sample's time;
    time before the first sample is not priced, as nothing is known about it.
    """

    def __init__(
        self, tariff: Tariff, tz: tzinfo | str, started_at: datetime | None = None
    ) -> None:
        self.tariff = tariff
        self.tz = resolve_tz(tz)
        self.plan = _plan(tariff, self.tz)
        self.started_at = None if started_at is None else as_utc(started_at, "started_at")
        self.samples = 0
        # microseconds since started_at of the last sample
        self._last_us = 0
        self._reference_wh = 0  # highest register seen
        self._energy_uwh = 0  # energy of the session so far, in uWh
        self._charging = False
        self._power_w: int | None = None
        self._current_ma: int | None = None
        # billed quantity per receipt line group (uWh or us); None: unused
        self._usage: list[int | None] = [None] * len(self.plan.groups)
        self._last_energy: int | None = None
        self._last_time: int | None = None
        self._flat: int | None = None
        # cache only, not state: receipt-line figures per line group
        self._memo: list[LineFigures | None] = [None] * len(self.plan.groups)
        # cache only, not state: calendar flags valid until _calendar_until (us)
        self._calendar_flags: tuple[bool, ...] = ()
        self._calendar_until = -1

    @property
    def energy_wh(self) -> int:
        """Energy delivered so far (Wh)."""
        return self._energy_uwh // _UWH_PER_WH

    @property
    def last_at(self) -> datetime | None:
        if self.started_at is None or not self.samples:
            return None
        return self.started_at + timedelta(microseconds=self._last_us)

    def add(self, sample: Sample) -> None:
        """Take the next sample (time order; equal times are allowed)."""
        started_at = self.started_at
        if started_at is None:
            started_at = self.started_at = as_utc(sample.at, "sample.at")
        at = sample.at
        if at.tzinfo is None:
            raise SessionTraceError(f"sample.at must be timezone-aware, got {at.isoformat()}")
        now_us = (at - started_at) // _ONE_US
        if not self.samples:
            check_sample(sample)
            if now_us < 0:
                raise SessionTraceError("the first sample is before the session started")
            self._reference_wh = sample.energy_wh
            self._last_us = now_us
            self._take_state(sample)
            self.samples = 1
            self._open(now_us)
            return
        if now_us < self._last_us:
            raise SessionTraceError(
                f"samples must be in time order: {at.isoformat()} is before the previous one"
            )
        check_sample(sample)
        register = sample.energy_wh
        rise = register - self._reference_wh
        if rise > 0:
            self._reference_wh = register
            start = self._energy_uwh
            self._energy_uwh = start + rise * _UWH_PER_WH
            self._price_period(self._last_us, now_us, start, self._energy_uwh)
        else:
            self._price_period(self._last_us, now_us, self._energy_uwh, self._energy_uwh)
        self._last_us = now_us
        self._take_state(sample)
        self.samples += 1

    def breakdown(self) -> PriceBreakdown:
        """The price so far, exactly as the final bill would be if the session ended now."""
        return settle(
            self.plan, self._usage, self._last_energy, self._last_time, self._flat, self._memo
        )

    def _take_state(self, sample: Sample) -> None:
        self._charging = bool(sample.charging)
        self._power_w = sample.power_w
        current = sample.current_a
        # mA, rounded down (bounds are rounded up; see restrictions.to_engine_units)
        self._current_ma = (
            None
            if current is None
            else int((Decimal(current) * 1000).to_integral_value(ROUND_FLOOR))
        )

    def _open(self, now_us: int) -> None:
        """FLAT can match at the very first instant of the session."""
        active = self.plan.active(self._band_key(now_us, self._energy_uwh, 0, 0))
        if active.flat is not None:
            self._flat = active.flat.index

    def _band_key(self, at_us: int, energy_uwh: int, rise_uwh: int, span_us: int) -> BandKey:
        plan = self.plan
        if plan.calendar is not None and at_us >= self._calendar_until:
            assert self.started_at is not None
            moment = self.started_at + timedelta(microseconds=at_us)
            self._calendar_flags, until = plan.calendar.state_at(moment)
            self._calendar_until = (until - self.started_at) // _ONE_US
        power_band = current_band = 0
        if plan.power_thresholds:
            power_mw: int | None = None
            if self._power_w is not None:
                power_mw = self._power_w * 1000
            elif not self._charging:
                power_mw = 0
            elif span_us > 0:
                # the period's average power: uWh * 3600 / us = W, so * 1000 for mW
                power_mw = rise_uwh * 3_600_000 // span_us
            power_band = plan.power_band(power_mw)
        if plan.current_thresholds:
            current_ma = self._current_ma
            if current_ma is None and not self._charging:
                current_ma = 0
            current_band = plan.current_band(current_ma)
        return (
            self._calendar_flags,
            plan.duration_band(at_us),
            plan.kwh_band(energy_uwh),
            power_band,
            current_band,
        )

    def _price_period(self, t0: int, t1: int, e0: int, e1: int) -> None:
        """Book [t0, t1) with energy e0 -> e1 (uWh), split where a restriction may change.

        Energy within the period is spread linearly over time; split points are
        rounded down to the microsecond and the uWh, and the parts always add
        up to the whole period exactly.
        """
        plan = self.plan
        span = t1 - t0
        rise = e1 - e0
        durations = plan.duration_thresholds
        kwh = plan.kwh_thresholds
        start = t0
        start_e = e0
        while True:
            key = self._band_key(start, start_e, rise, span)
            cut = t1
            if plan.calendar is not None and self._calendar_until < cut:
                cut = self._calendar_until
            band = key[1]
            if band < len(durations) and durations[band] < cut:
                cut = durations[band]
            cut_e = e1 if cut == t1 else e0 + rise * (cut - t0) // span
            band = key[2]
            if rise and band < len(kwh) and kwh[band] < cut_e:
                cut_e = kwh[band]
                cut = max(start, t0 + (cut_e - e0) * span // rise)
            self._book(key, start, cut, cut_e - start_e)
            if cut == t1 and cut_e == e1:
                return
            start, start_e = cut, cut_e

    def _book(
        self,
        key: BandKey,
        start: int,
        end: int,
        energy: int,
    ) -> None:
        active = self.plan.active(key)
        usage = self._usage
        component = active.energy
        if energy > 0 and component is not None:
            g = component.group
            seen = usage[g]
            usage[g] = energy if seen is None else seen + energy
            self._last_energy = component.index
        component = active.time if self._charging else active.parking
        if end > start and component is not None:
            g = component.group
            seen = usage[g]
            usage[g] = end - start if seen is None else seen + (end - start)
            self._last_time = component.index
        if self._flat is None and active.flat is not None:
            self._flat = active.flat.index

    # -- snapshot / restore -------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart, as JSON-safe plain values."""
        return {
            "version": _STATE_VERSION,
            "tariff_id": self.tariff.id,
            "tariff_last_updated": None
            if self.tariff.last_updated is None
            else self.tariff.last_updated.isoformat(),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "samples": self.samples,
            "last_us": self._last_us,
            "reference_wh": self._reference_wh,
            "energy_uwh": self._energy_uwh,
            "charging": self._charging,
            "power_w": self._power_w,
            "current_ma": self._current_ma,
            "usage": [[g, q] for g, q in enumerate(self._usage) if q is not None],
            "last_energy": self._last_energy,
            "last_time": self._last_time,
            "flat": self._flat,
        }

    @classmethod
    def from_state(
        cls, tariff: Tariff, tz: tzinfo | str, state: dict[str, Any]
    ) -> IncrementalPricer:
        """Resume from :meth:`to_state`; the tariff must be the one the state was made with."""
        try:
            if state["version"] != _STATE_VERSION:
                raise PricerStateError(f"unsupported pricer state version {state['version']!r}")
            updated = None if tariff.last_updated is None else tariff.last_updated.isoformat()
            if state["tariff_id"] != tariff.id or state["tariff_last_updated"] != updated:
                raise PricerStateError(
                    f"pricer state belongs to tariff {state['tariff_id']!r} "
                    f"({state['tariff_last_updated']}), not {tariff.id!r} ({updated})"
                )
            started = state["started_at"]
            pricer = cls(tariff, tz, None if started is None else datetime.fromisoformat(started))
            pricer.samples = int(state["samples"])
            pricer._last_us = int(state["last_us"])
            pricer._reference_wh = int(state["reference_wh"])
            pricer._energy_uwh = int(state["energy_uwh"])
            pricer._charging = bool(state["charging"])
            pricer._power_w = None if state["power_w"] is None else int(state["power_w"])
            current = state["current_ma"]
            pricer._current_ma = None if current is None else int(current)
            for group, quantity in state["usage"]:
                pricer._usage[int(group)] = int(quantity)
            count = len(pricer.plan.components)
            for name in ("last_energy", "last_time", "flat"):
                value = state[name]
                if value is not None and not 0 <= int(value) < count:
                    raise PricerStateError(f"pricer state names component {value} of {count}")
                setattr(pricer, f"_{name}", None if value is None else int(value))
        except PricerStateError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            raise PricerStateError(f"damaged pricer state: {exc!r}") from None
        return pricer
