"""The driver's charging session: reserve, hold, start, price live, stop.

Settlement (capture, release, receipt) lives in settlement.py. Every state
change is a compare-and-set in the database against the transition table in
domain/session.py, so two server instances, a webhook and a timer racing on
the same session cannot move it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from plugpay.domain.errors import (
    ChargerOffline,
    CommandFailed,
    CommandTimeout,
    InvalidInput,
    NotFound,
)
from plugpay.domain.metering import register_flag
from plugpay.domain.money import Money
from plugpay.domain.session import ACTIVE_STATES, SessionState, must_stop_for_hold
from plugpay.domain.tariff import IncrementalPricer, PriceBreakdown, Sample, Tariff
from plugpay.services.commands import CommandService
from plugpay.services.ports import (
    ConnectorPlace,
    ConnectorTaken,
    DemoCardForm,
    FlaggedSample,
    HoldRequest,
    LiveBus,
    PaymentGateway,
    PaymentUnavailable,
    PushSubscription,
    Reading,
    SessionRecord,
    SessionStore,
    TransactionInfo,
)
from plugpay.services.tariffs import TariffService

log = logging.getLogger(__name__)
S = SessionState

# Pauses between tries to stop a transaction that started after its session gave up.
LATE_STOP_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

OUT_OF_ORDER = {"Faulted", "Unavailable", "Inoperative"}
IN_USE = {"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"}


class SessionUnavailable(InvalidInput):
    """The connector cannot take a new session now (message fit for the driver)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def owner_hash(secret_key: str, token: str) -> str:
    """What the database keeps of the browser's capability cookie."""
    return hashlib.sha256(f"{secret_key}:{token}".encode()).hexdigest()


def to_sample(reading: Reading) -> Sample:
    charging = reading.power_w is None or reading.power_w > 0
    return Sample(
        at=reading.at, energy_wh=reading.energy_wh, charging=charging, power_w=reading.power_w
    )


@dataclass(frozen=True)
class ConnectorView:
    place: ConnectorPlace
    availability: str  # available | occupied | offline | out_of_order
    tariff: Tariff
    tariff_pk: int
    hold: Money


@dataclass
class SessionSettings:
    default_hold: Decimal = Decimal("50.00")
    start_timeout: float = 90.0
    reservation_timeout: float = 900.0  # a reserved connector waits this long for payment
    silent_timeout: float = (
        900.0  # no reading and charger offline this long: settle from the last one
    )
    stop_retry: float = 30.0  # a charger still metering this long after a stop is asked again


@dataclass
class SessionService:
    store: SessionStore
    tariffs: TariffService
    commands: CommandService
    payments: PaymentGateway
    live: LiveBus
    settings: SessionSettings
    demo: DemoCardForm | None = None
    # In-memory pricing of the sessions whose charger is connected here;
    # rebuilt from the stored readings after a restart (same engine, same figure).
    _pricers: dict[str, IncrementalPricer] = field(default_factory=dict)
    _tariffs: dict[int, Tariff] = field(default_factory=dict)
    _last_cost: dict[str, tuple[datetime, int]] = field(default_factory=dict)
    _session_of_tx: dict[int, str | None] = field(default_factory=dict)
    _charging: dict[str, SessionRecord] = field(default_factory=dict)
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _stop_asked: dict[str, float] = field(default_factory=dict)  # monotonic time of the last ask

    # -- the connector page ---------------------------------------------------
    async def connector(self, charger_id: str, connector_id: int) -> ConnectorView:
        place = await self.tariffs.store.place(charger_id, connector_id)
        if place is None:
            raise NotFound("no such charger or connector")
        stored, tariff = await self.tariffs.applicable(place)
        active = await self.store.active_on(charger_id, connector_id)
        if not place.connected:
            availability = "offline"
        elif place.status in OUT_OF_ORDER:
            availability = "out_of_order"
        elif active is not None or place.status in IN_USE:
            availability = "occupied"
        else:
            availability = "available"
        hold = Money.from_decimal(self.settings.default_hold, tariff.currency)
        return ConnectorView(place, availability, tariff, stored.pk, hold)

    # -- reserve and hold -------------------------------------------------------
    async def create(
        self, charger_id: str, connector_id: int, owner: str, lang: str
    ) -> SessionRecord:
        """Reserve the connector (the database refuses a second active one); place the hold."""
        view = await self.connector(charger_id, connector_id)
        if view.availability != "available":
            raise SessionUnavailable(f"connector is {view.availability.replace('_', ' ')}")
        session_id = secrets.token_urlsafe(24)  # 192 bits
        try:
            await self.store.create(
                {
                    "id": session_id,
                    "charger_id": charger_id,
                    "connector_id": connector_id,
                    "owner_hash": owner,
                    "lang": lang,
                    "tariff_pk": view.tariff_pk,
                    "time_zone": view.place.time_zone,
                    "currency": view.hold.currency,
                    "hold_minor": view.hold.minor,
                    "id_tag": secrets.token_hex(10),
                    "payment_provider": self.payments.name,
                }
            )
        except ConnectorTaken:
            raise SessionUnavailable("someone else just started on this connector") from None
        try:
            state = await self.payments.create_hold(
                HoldRequest(
                    session_id,
                    view.hold.minor,
                    view.hold.currency,
                    f"Charging at {charger_id} connector {connector_id}",
                    f"{session_id}:hold",
                )
            )
        except PaymentUnavailable:
            await self.store.transition(
                session_id, frozenset({S.CREATED}), S.CANCELED, reason="payment_unavailable"
            )
            raise SessionUnavailable(
                "payments are unavailable right now; please try again"
            ) from None
        await self.store.update(session_id, payment_ref=state.ref)
        record = await self.store.get(session_id)
        assert record is not None
        return record

    async def get_owned(self, session_id: str, owner: str | None) -> SessionRecord:
        """The session if ``owner`` holds its capability; else NotFound (no hint either way)."""
        record = await self.store.get(session_id) if 16 <= len(session_id) <= 43 else None
        if record is None or owner is None or not secrets.compare_digest(record.owner_hash, owner):
            raise NotFound("no such session")
        return record

    async def payment_secret(self, record: SessionRecord) -> str | None:
        if record.payment_ref is None:
            return None
        # Kept from the hold's creation: showing the payment page costs no provider call.
        return await self.payments.client_secret(record.payment_ref)

    # -- authorise and start ----------------------------------------------------
    async def confirm_payment(self, session_id: str) -> tuple[SessionRecord, str | None]:
        """Re-read the hold from the provider (never trust the browser) and start when it is good.

        Returns the session and, when the hold is not (yet) usable, why, in words for the driver.
        """
        record = await self.store.get(session_id)
        if record is None:
            raise NotFound("no such session")
        if record.state != S.CREATED or record.payment_ref is None:
            return record, None
        payment = await self.payments.get(record.payment_ref)
        if payment.status == "requires_action":
            return record, "Your bank needs you to confirm this payment."
        if payment.status != "requires_capture":
            return record, payment.decline_message or "The payment was not completed."
        if payment.amount_minor != record.hold_minor or payment.currency.upper() != record.currency:
            log.warning("session %s: hold amount mismatch", session_id)
            return record, "The payment amount does not match the hold."
        if not await self.store.transition(
            session_id,
            frozenset({S.CREATED}),
            S.AUTHORIZED,
            authorized_at=utcnow(),
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
        ):
            return await self._reload(session_id), None
        await self.store.add_id_tag(record.id_tag, f"session {session_id}")
        # The start command waits for the charger (up to the OCPP call timeout);
        # neither the driver's browser nor a provider webhook should wait with it.
        # The live page shows "starting" and follows over SSE.
        self.spawn(self._start(session_id))
        return await self._reload(session_id), None

    async def _start(self, session_id: str) -> None:
        record = await self._reload(session_id)
        deadline = utcnow() + timedelta(seconds=self.settings.start_timeout)
        if not await self.store.transition(
            session_id, frozenset({S.AUTHORIZED}), S.STARTING, start_deadline=deadline
        ):
            return
        reason = None
        try:
            accepted = await self.commands.remote_start(
                record.charger_id, record.connector_id, record.id_tag
            )
            if not accepted:
                reason = "charger_rejected"
        except ChargerOffline:
            reason = "charger_offline"
        except (CommandTimeout, CommandFailed):
            reason = "charger_not_responding"
        await self.publish(session_id)
        if reason is not None:
            await self.fail_start(session_id, reason)

    async def fail_start(self, session_id: str, reason: str) -> None:
        """The charge did not start: release the hold."""
        from_states = frozenset({S.AUTHORIZED, S.STARTING})
        if await self.store.transition(session_id, from_states, S.START_FAILED, reason=reason):
            await self._release(session_id)
            await self.publish(session_id)

    async def cancel(self, session_id: str, reason: str) -> None:
        """Abandoned before the charge started (e.g. never paid)."""
        if await self.store.transition(
            session_id, frozenset({S.CREATED}), S.CANCELED, reason=reason
        ):
            await self._release(session_id)
            await self.publish(session_id)

    async def _release(self, session_id: str) -> None:
        from plugpay.services.settlement import enqueue_release

        await enqueue_release(self, session_id)

    async def demo_pay(self, session_id: str, card: str) -> tuple[SessionRecord, str | None]:
        """The demo card form: approve, decline or ask for authentication, then confirm."""
        record = await self._reload(session_id)
        if self.demo is None or record.payment_ref is None:
            raise NotFound("no demo payment here")
        if card not in ("approve", "decline", "authenticate"):
            raise InvalidInput("card must be approve, decline or authenticate")
        if record.state == S.CREATED:
            await self.demo.confirm(record.payment_ref, card)
        return await self.confirm_payment(session_id)

    async def demo_authenticate(
        self, session_id: str, ok: bool
    ) -> tuple[SessionRecord, str | None]:
        record = await self._reload(session_id)
        if self.demo is None or record.payment_ref is None:
            raise NotFound("no demo payment here")
        if record.state == S.CREATED:
            await self.demo.authenticate(record.payment_ref, ok)
        return await self.confirm_payment(session_id)

    async def add_push(
        self, session_id: str, subscription: PushSubscription, require_https: bool
    ) -> None:
        """Remember where to send this session's receipt notification."""
        endpoint = subscription.endpoint
        if not endpoint.startswith("https://") and (
            require_https or not endpoint.startswith("http://")
        ):
            raise InvalidInput("push endpoint must be an https URL")
        if len(endpoint) > 1000 or not subscription.p256dh or not subscription.auth:
            raise InvalidInput("incomplete push subscription")
        await self.store.add_push_subscription(session_id, subscription)

    # -- stop -------------------------------------------------------------------
    async def stop(self, session_id: str, reason: str = "driver") -> None:
        """Ask the charger to end the transaction; the session settles when it has."""
        record = await self._reload(session_id)
        if record.state == S.STARTING and record.transaction_pk is None:
            await self.fail_start(session_id, "stopped_before_start")
            return
        if not await self.store.transition(
            session_id, frozenset({S.CHARGING}), S.STOPPING, reason=reason
        ):
            return
        await self.publish(session_id)
        await self._ask_to_stop(record)

    async def _ask_to_stop(self, record: SessionRecord) -> None:
        session_id = record.id
        self._stop_asked[session_id] = time.monotonic()
        info = (
            await self.store.transaction_info(record.transaction_pk)
            if record.transaction_pk
            else None
        )
        try:
            if info is None or info.ocpp_transaction_id is None:
                raise CommandFailed("Unknown", "no transaction to stop")
            accepted = await self.commands.remote_stop(record.charger_id, info.ocpp_transaction_id)
        except (ChargerOffline, CommandTimeout, CommandFailed) as exc:
            # Stay in STOPPING: the charger ends the transaction when it can, or
            # the silent-charger timer settles from the last reading.
            log.warning("session %s: stop not confirmed (%s)", session_id, exc)
            return
        if not accepted:
            # The charger said no and charges on: back to CHARGING, so the driver
            # can ask again and the hold limit keeps asking at every reading.
            log.warning("session %s: the charger refused to stop", session_id)
            if await self.store.transition(
                session_id, frozenset({S.STOPPING}), S.CHARGING, reason=None
            ):
                await self.publish(session_id)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping a reference until it is done.

        Commands to a charger must never be awaited from inside that charger's
        message handler: the answer would wait behind the handler itself.
        """
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _stop_late(self, record: SessionRecord, transaction_pk: int) -> None:
        # A 1.6 charger learns the transaction id from our answer to its
        # StartTransaction and refuses a stop that overtakes that answer: try again
        # a few times, until the charger accepts or the transaction has ended.
        for delay in LATE_STOP_DELAYS:
            info = await self.store.transaction_info(transaction_pk)
            if info is None or info.ended or info.ocpp_transaction_id is None:
                return
            try:
                if await self.commands.remote_stop(record.charger_id, info.ocpp_transaction_id):
                    return
            except (ChargerOffline, CommandTimeout, CommandFailed):
                pass
            await asyncio.sleep(delay)
        log.warning("late transaction of session %s could not be stopped", record.id)

    # -- hooks from the charger gateway ----------------------------------------
    async def on_transaction_started(
        self, transaction_pk: int, id_tag: str | None, started_at: datetime
    ) -> None:
        if id_tag is None:
            return
        record = await self.store.by_id_tag(id_tag)
        if record is None or record.transaction_pk == transaction_pk:
            return
        if record.state in (S.START_FAILED, S.CANCELED):
            # Started after we gave up and released the hold: stop it at once.
            self.spawn(self._stop_late(record, transaction_pk))
            return
        moved = await self.store.transition(
            record.id,
            frozenset({S.STARTING, S.AUTHORIZED}),
            S.CHARGING,
            transaction_pk=transaction_pk,
            started_at=started_at,
        )
        if moved:
            self._session_of_tx[transaction_pk] = record.id
            await self.publish(record.id)

    async def on_readings(self, transaction_pk: int, samples: Sequence[FlaggedSample]) -> None:
        """New durable readings for a transaction: price them and tell the driver."""
        if transaction_pk in self._session_of_tx:
            session_id = self._session_of_tx[transaction_pk]
        else:  # first reading of this transaction here: one lookup, then cached
            found = await self.store.by_transaction(transaction_pk)
            session_id = self._session_of_tx[transaction_pk] = found.id if found else None
        if session_id is None:
            return  # an RFID or other transaction without a driver session
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
        )
        if updated is None:  # settled or stopped meanwhile
            self._charging.pop(record.id, None)
            return
        record = self._charging[record.id] = updated
        await self.live.publish(record.id, snapshot(record))
        rate = self._rate(record.id, last.at, cost)
        if record.state == S.CHARGING and must_stop_for_hold(cost, record.hold_minor, rate):
            # Not awaited: this runs inside the charger's own message handler,
            # and the stop command's answer arrives on that same connection.
            self.spawn(self.stop(record.id, reason="hold_limit"))
        elif record.state == S.STOPPING and (
            time.monotonic() - self._stop_asked.get(record.id, 0.0) > self.settings.stop_retry
        ):
            # Still metering well after the stop was asked for: the charger may never
            # have got it (offline at the time, or since restarted). Ask again.
            self._stop_asked[record.id] = time.monotonic()
            self.spawn(self._ask_to_stop(record))

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
        from plugpay.domain.tariff import price_session

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
        self._stop_asked.pop(session_id, None)
        if transaction_pk is not None:
            self._session_of_tx.pop(transaction_pk, None)

    # -- live -------------------------------------------------------------------
    async def _reload(self, session_id: str) -> SessionRecord:
        record = await self.store.get(session_id)
        if record is None:
            raise NotFound("no such session")
        return record

    async def publish(self, session_id: str) -> None:
        record = await self._reload(session_id)
        await self.live.publish(session_id, snapshot(record))

    async def active_sessions(self) -> list[SessionRecord]:
        return await self.store.in_states(frozenset(ACTIVE_STATES))


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
        "captured_minor": record.captured_minor,
        "reason": record.reason,
    }
