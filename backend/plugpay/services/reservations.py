"""Reserve a connector, place the hold, authorise: the driver's way to a start.

The connector is reserved in one unit of work (the database refuses a second
active session on it), the hold is asked of the provider outside any unit,
and its answer is recorded in the next one. Authorising commits the new state,
the hold's ledger journal, the charging token and the start job together:
after a crash the start still happens, or the sweeper releases the hold.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from plugpay.crashpoints import crash_point
from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.domain.ledger import authorised
from plugpay.domain.money import Money
from plugpay.domain.push import check_push_endpoint
from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for
from plugpay.domain.tariff import Tariff
from plugpay.services.limits import GUEST_START, GuestStartLimits, check_guest_start
from plugpay.services.ports import (
    ConnectorPlace,
    ConnectorTaken,
    DemoCardForm,
    HoldRequest,
    LiveBus,
    PaymentDeclined,
    PaymentGateway,
    PaymentUnavailable,
    PushSubscription,
    SessionRecord,
    SessionStore,
    UnitOfWorkFactory,
)
from plugpay.services.ports.cards import SavedCard
from plugpay.services.ports.jobs import Job, JobKind, NewJob
from plugpay.services.ports.limits import RateLimiter
from plugpay.services.principals import Principal
from plugpay.services.session_moves import cancel_reservation, release_hold, utcnow
from plugpay.services.snapshots import publish
from plugpay.services.tariffs import TariffService

log = logging.getLogger(__name__)
S = SessionState

OUT_OF_ORDER = {"Faulted", "Unavailable", "Inoperative"}
IN_USE = {"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"}


class SessionUnavailable(InvalidInput):
    """The connector cannot take a new session now (message fit for the driver)."""


# A one-tap hold lost on the way is looked for once the reservation has ended.
RECOVER_AFTER = timedelta(minutes=1)


class SavedCardDeclined(SessionUnavailable):
    """The saved card was declined for a one-tap start; the connector is free again."""


class TooManyStarts(SessionUnavailable):
    """A guest start limit was reached; ``retry_after`` seconds until one is free."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many starts from here; please wait a few minutes")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ConnectorView:
    place: ConnectorPlace
    availability: str  # available | occupied | offline | out_of_order
    tariff: Tariff
    tariff_pk: int
    hold: Money
    guest_tariff: Tariff | None = None  # the guest price, when the driver's is another


@dataclass
class ReservationService:
    uow: UnitOfWorkFactory
    store: SessionStore
    tariffs: TariffService
    payments: PaymentGateway
    live: LiveBus
    timeouts: Timeouts
    limiter: RateLimiter
    limits: GuestStartLimits = GUEST_START
    default_hold: Decimal = Decimal("50.00")
    demo: DemoCardForm | None = None

    # -- the connector page ---------------------------------------------------
    async def connector(
        self, charger_id: str, connector_id: int, audiences: tuple[str, ...] = ("guest",)
    ) -> ConnectorView:
        """What the connector page shows: the price for ``audiences`` (a member's
        groups) and, when that is not the guest price, the guest price beside it."""
        place = await self.tariffs.store.place(charger_id, connector_id)
        if place is None:
            raise NotFound("no such charger or connector")
        stored, tariff = await self.tariffs.applicable(place, audiences)
        guest_tariff = None
        if audiences != ("guest",):
            with contextlib.suppress(NotFound):  # a members-only connector has none
                guest_stored, guest = await self.tariffs.applicable(place)
                guest_tariff = guest if guest_stored.pk != stored.pk else None
        active = await self.store.active_on(charger_id, connector_id)
        if not place.connected:
            availability = "offline"
        elif place.status in OUT_OF_ORDER:
            availability = "out_of_order"
        elif active is not None or place.status in IN_USE:
            availability = "occupied"
        else:
            availability = "available"
        hold = Money.from_decimal(self.default_hold, tariff.currency)
        return ConnectorView(place, availability, tariff, stored.pk, hold, guest_tariff)

    # -- reserve and hold -------------------------------------------------------
    async def create(
        self,
        charger_id: str,
        connector_id: int,
        owner: str,
        lang: str,
        client_address: str = "",
        account_id: int | None = None,
        card: SavedCard | None = None,
        audiences: tuple[str, ...] = ("guest",),
    ) -> SessionRecord:
        """Reserve the connector (the database refuses a second active one); place the hold.

        Strangers can trigger this: starts are limited per client address and per
        connector (across instances with Redis), counted once the connector is known.
        """
        view = await self.connector(charger_id, connector_id, audiences)
        if view.availability != "available":
            raise SessionUnavailable(f"connector is {view.availability.replace('_', ' ')}")
        decision = await check_guest_start(
            self.limiter, client_address, charger_id, connector_id, self.limits
        )
        if not decision.allowed:
            raise TooManyStarts(decision.retry_after)
        session_id = secrets.token_urlsafe(24)  # 192 bits
        now = utcnow()
        try:
            async with self.uow() as uow:
                if card is not None:
                    # An off-session hold is money held as soon as the provider says
                    # yes: should its answer be lost, this job finds it and releases it.
                    await uow.jobs.add(
                        NewJob(
                            JobKind.RECOVER_HOLD,
                            f"recover:{session_id}",
                            {"customer_ref": card.customer_ref, "method_ref": card.method_ref},
                            session_id=session_id,
                            run_at=now + self.timeouts.reservation + RECOVER_AFTER,
                        )
                    )
                record = await uow.sessions.create(
                    {
                        "id": session_id,
                        "charger_id": charger_id,
                        "connector_id": connector_id,
                        "owner_hash": owner,
                        "account_id": account_id,
                        "lang": lang,
                        "tariff_pk": view.tariff_pk,
                        "time_zone": view.place.time_zone,
                        "currency": view.hold.currency,
                        "hold_minor": view.hold.minor,
                        "id_tag": secrets.token_hex(10),
                        "payment_provider": self.payments.name,
                        "deadline_at": deadline_for(S.CREATED, now, self.timeouts),
                    }
                )
        except ConnectorTaken:
            raise SessionUnavailable("someone else just started on this connector") from None
        request = HoldRequest(
            session_id,
            view.hold.minor,
            view.hold.currency,
            f"Charging at {charger_id} connector {connector_id}",
            f"{session_id}:hold",
        )
        try:
            if card is None:
                state = await self.payments.create_hold(request)
            else:
                state = await self.payments.create_off_session_hold(
                    request, card.customer_ref, card.method_ref
                )
        except PaymentUnavailable:
            await self.cancel(session_id, Reason.PAYMENT_UNAVAILABLE)
            raise SessionUnavailable(
                "payments are unavailable right now; please try again"
            ) from None
        except PaymentDeclined as exc:
            # The saved card said no: the connector is free again at once, and a
            # hold the refusal left behind is released.
            await self._declined(session_id, exc.payment_ref)
            raise SavedCardDeclined(str(exc)) from None
        crash_point("hold.answered")
        async with self.uow() as uow:
            current = await uow.sessions.get(session_id)
            if current is None or current.state != S.CREATED:
                # Canceled meanwhile (the reservation ran out): nothing is held yet,
                # but the intent is tidied away with the rest.
                raise SessionUnavailable("the reservation ended; please start again")
            record = await uow.sessions.update(current, payment_ref=state.ref)
            await uow.payments.open(session_id, self.payments.name, state.ref, record.currency)
        if card is not None and state.status == "requires_capture":
            with contextlib.suppress(PaymentUnavailable):  # the payment page reads it again
                record, _ = await self.confirm_payment(session_id)  # one tap: authorised now
        return record

    async def run_recover_hold(self, job: Job) -> None:
        """A one-tap session that ended without its hold recorded (job
        ``payment.recover_hold``): ask for the hold again with the same idempotency
        key, which finds the one the provider made (or makes one), and release it."""
        record = await self.store.get(str(job.session_id))
        if record is None or record.payment_ref is not None:
            return  # recorded: the session's own release or capture takes care of it
        if record.state == S.CREATED:
            raise PaymentUnavailable("the reservation is still open")  # look again later
        request = HoldRequest(
            record.id,
            record.hold_minor,
            record.currency,
            f"Charging at {record.charger_id} connector {record.connector_id}",
            f"{record.id}:hold",
        )
        try:
            state = await self.payments.create_off_session_hold(
                request, str(job.payload["customer_ref"]), str(job.payload["method_ref"])
            )
            ref: str | None = state.ref
        except PaymentDeclined as exc:
            ref = exc.payment_ref
        if ref is None:
            return
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None or current.payment_ref is not None:
                return
            current = await uow.sessions.update(current, payment_ref=ref)
            await uow.payments.open(current.id, self.payments.name, ref, current.currency)
            await release_hold(uow, current, self.timeouts)
        log.warning("session %s: a one-tap hold found after the fact, released", record.id)

    async def _declined(self, session_id: str, payment_ref: str | None) -> None:
        async with self.uow() as uow:
            current = await uow.sessions.get(session_id)
            if current is None or current.state != S.CREATED:
                return
            if payment_ref is not None and current.payment_ref is None:
                current = await uow.sessions.update(current, payment_ref=payment_ref)
                await uow.payments.open(
                    session_id, self.payments.name, payment_ref, current.currency
                )
            record = await cancel_reservation(uow, current, Reason.PAYMENT_DECLINED, self.timeouts)
        await publish(self.live, record)

    async def resume_hold(self, record: SessionRecord) -> SessionRecord:
        """A reservation whose hold was asked for but never recorded (a crash between
        the two): ask again with the same idempotency key, which finds that hold."""
        if record.state != S.CREATED or record.payment_ref is not None:
            return record
        try:
            state = await self.payments.create_hold(
                HoldRequest(
                    record.id,
                    record.hold_minor,
                    record.currency,
                    f"Charging at {record.charger_id} connector {record.connector_id}",
                    f"{record.id}:hold",
                )
            )
        except PaymentUnavailable:
            raise SessionUnavailable(
                "payments are unavailable right now; please try again"
            ) from None
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None or current.state != S.CREATED or current.payment_ref is not None:
                return current or record
            current = await uow.sessions.update(current, payment_ref=state.ref)
            await uow.payments.open(current.id, self.payments.name, state.ref, current.currency)
        return current

    async def owned_active(
        self, charger_id: str, connector_id: int, principal: Principal
    ) -> SessionRecord | None:
        """The principal's own session holding this connector, if any (the driver
        scanned the code again, or lost the page)."""
        active = await self.store.active_on(charger_id, connector_id)
        return active if active is not None and principal.owns(active) else None

    async def owned(self, principal: Principal, limit: int = 10) -> list[SessionRecord]:
        """The principal's sessions, newest first (the start page lists them)."""
        return await self.store.of_owner(principal.capability_hashes, principal.account_id, limit)

    async def get_owned(self, session_id: str, principal: Principal) -> SessionRecord:
        """The session if ``principal`` owns it; else NotFound (no hint either way)."""
        record = await self.store.get(session_id) if 16 <= len(session_id) <= 43 else None
        if record is None or not principal.owns(record):
            raise NotFound("no such session")
        return record

    async def payment_secret(self, record: SessionRecord) -> str | None:
        if record.payment_ref is None:
            return None
        # Kept from the hold's creation: showing the payment page costs no provider call.
        return await self.payments.client_secret(record.payment_ref)

    # -- authorise ----------------------------------------------------------------
    async def confirm_payment(self, session_id: str) -> tuple[SessionRecord, str | None]:
        """Re-read the hold from the provider (never trust the browser); authorise when
        it is good. Returns the session and, when the hold is not (yet) usable, why,
        in words for the driver."""
        record = await self._get(session_id)
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
        crash_point("payment.checked")
        now = utcnow()
        async with self.uow() as uow:
            current = await uow.sessions.get(session_id)
            if current is None or current.state != S.CREATED:
                return current or record, None  # a double click, a webhook: done already
            start_by = deadline_for(S.AUTHORIZED, now, self.timeouts)
            record = await uow.sessions.move(
                current,
                S.AUTHORIZED,
                authorized_at=now,
                start_deadline=start_by,
                deadline_at=start_by,
                card_brand=payment.card_brand,
                card_last4=payment.card_last4,
            )
            hold = await uow.payments.by_ref(record.payment_ref or "")
            if hold is not None:
                await uow.payments.post(
                    hold,
                    f"authorise:{session_id}",
                    authorised(record.hold_minor, record.currency),
                    status="authorised",
                    authorised_minor=record.hold_minor,
                )
            await uow.sessions.add_id_tag(
                record.id_tag, f"session {session_id}", charger_id=record.charger_id
            )
            await uow.jobs.add(
                NewJob(
                    JobKind.SESSION_START,
                    f"start:{session_id}",
                    session_id=session_id,
                    charger_id=record.charger_id,
                    give_up_at=start_by,
                )
            )
        crash_point("authorized.committed")
        await publish(self.live, record)
        return record, None

    async def cancel(self, session_id: str, reason: Reason) -> SessionRecord:
        """Abandoned before the charge started: free the connector, release any hold."""
        async with self.uow() as uow:
            record = await uow.sessions.get(session_id)
            if record is None:
                raise NotFound("no such session")
            if record.state != S.CREATED:
                return record
            record = await cancel_reservation(uow, record, reason, self.timeouts)
        await publish(self.live, record)
        return record

    # -- the demo provider's card form ----------------------------------------------
    async def demo_pay(self, session_id: str, card: str) -> tuple[SessionRecord, str | None]:
        """The demo card form: approve, decline or ask for authentication, then confirm."""
        record = await self.resume_hold(await self._get(session_id))
        if self.demo is None or record.payment_ref is None:
            raise NotFound("no demo payment here")
        if card not in ("approve", "decline", "authenticate"):
            raise InvalidInput("card must be approve, decline or authenticate")
        if record.state == S.CREATED:
            with contextlib.suppress(PaymentDeclined):
                # Paid already (a double click, a retry after a crash): the hold is
                # read again below, and that decides.
                await self.demo.confirm(record.payment_ref, card)
        return await self.confirm_payment(session_id)

    async def demo_authenticate(
        self, session_id: str, ok: bool
    ) -> tuple[SessionRecord, str | None]:
        record = await self._get(session_id)
        if self.demo is None or record.payment_ref is None:
            raise NotFound("no demo payment here")
        if record.state == S.CREATED:
            with contextlib.suppress(PaymentDeclined):
                await self.demo.authenticate(record.payment_ref, ok)
        return await self.confirm_payment(session_id)

    # -- the receipt notification ---------------------------------------------------
    async def add_push(
        self,
        session_id: str,
        subscription: PushSubscription,
        *,
        allow_private: bool = False,
        device_label: str | None = None,
    ) -> None:
        """Remember where to send this session's receipt notification: a public https
        endpoint only (private hosts in development, ``allow_private``)."""
        endpoint = check_push_endpoint(subscription.endpoint, allow_private)
        if not subscription.p256dh or not subscription.auth:
            raise InvalidInput("incomplete push subscription")
        if len(subscription.p256dh) > 200 or len(subscription.auth) > 100:
            raise InvalidInput("push subscription keys are too long")
        async with self.uow() as uow:
            await uow.sessions.add_push_subscription(
                session_id, PushSubscription(endpoint, subscription.p256dh, subscription.auth)
            )
            record = await uow.sessions.get(session_id)
            if record is not None and record.account_id is not None:
                # A signed-in driver's browser: the account's receipts all go to it.
                await uow.accounts.add_device(
                    record.account_id,
                    endpoint,
                    subscription.p256dh,
                    subscription.auth,
                    device_label,
                    utcnow(),
                )

    async def _get(self, session_id: str) -> SessionRecord:
        record = await self.store.get(session_id)
        if record is None:
            raise NotFound("no such session")
        return record
