"""RFID cards: issue, block, link to an account; and the charge a card starts.

A station owner issues cards to a driver group (``plugpay rfid add TAG --group G``);
a driver links a card, issued or their own, to their account (``/me/rfid``). A
card pays with its account's default saved card: until it has one, the charger is
told NoCredit (Blocked in OCPP 1.6), and a card nobody linked is not billable.

When a charger starts a transaction with a linked card (after Authorize, or
offline from its local list, reported when it reconnects), the job that tells
sessions of started transactions comes here: one unit makes the session for
that transaction (found again by it on a retry), then the hold goes on the saved
card off-session, then one unit authorises it and moves it to CHARGING with the
hold's ledger journal. A declined hold (or one the bank wants confirmed, which no
charger can do) cancels the session, releases what was held and stops the
transaction at once; the few seconds of energy before that stay on review.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.domain.ledger import authorised
from plugpay.domain.session import Reason, SessionState, Timeouts, deadline_for
from plugpay.services.accounts import check_group_name
from plugpay.services.ports import (
    AccountStore,
    ConnectorTaken,
    HoldRequest,
    LiveBus,
    PaymentDeclined,
    PaymentGateway,
    SessionRecord,
    SessionStore,
    UnitOfWork,
    UnitOfWorkFactory,
)
from plugpay.services.ports.cards import CardStore
from plugpay.services.ports.jobs import JobKind, NewJob
from plugpay.services.ports.rfid import RfidCard, RfidStore
from plugpay.services.reservations import ReservationService
from plugpay.services.session_moves import cancel_reservation
from plugpay.services.snapshots import publish

log = logging.getLogger(__name__)
S = SessionState
MAX_TAG = 20  # OCPP 1.6 IdToken (2.0.1 allows 36; a card must work with both)


def check_tag(id_tag: str) -> str:
    tag = id_tag.strip()
    if not 1 <= len(tag) <= MAX_TAG or not tag.isprintable() or " " in tag:
        raise InvalidInput("an RFID card number is 1-20 characters without spaces")
    return tag


@dataclass
class RfidService:
    uow: UnitOfWorkFactory
    store: RfidStore
    sessions: SessionStore
    accounts: AccountStore
    cards: CardStore
    reservations: ReservationService
    payments: PaymentGateway
    live: LiveBus
    timeouts: Timeouts
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Every charger's local list follows a change of cards (runtime.py sets it).
    on_change: Callable[[], Awaitable[None]] | None = None

    async def _changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()

    # -- the station owner ------------------------------------------------------
    async def issue(
        self,
        id_tag: str,
        group: str,
        *,
        label: str | None = None,
        expires_at: datetime | None = None,
    ) -> RfidCard:
        tag = check_tag(id_tag)
        async with self.uow() as uow:
            if await uow.rfid.get(tag) is not None or await uow.rfid.is_session_token(tag):
                raise InvalidInput(f"card {tag} exists already")
            card = await uow.rfid.add(
                tag,
                account_id=None,
                group_name=check_group_name(group),
                label=(label or "")[:60] or None,
                expires_at=expires_at,
                now=self.clock(),
            )
        await self._changed()
        return card

    async def set_blocked(self, id_tag: str, blocked: bool) -> None:
        async with self.uow() as uow:
            if not await uow.rfid.set_status(id_tag, "Blocked" if blocked else "Accepted"):
                raise NotFound(f"no card {id_tag}")
        await self._changed()

    async def all(self) -> list[RfidCard]:
        return await self.store.cards()

    # -- the driver -------------------------------------------------------------
    async def of_account(self, account_id: int) -> list[RfidCard]:
        return await self.store.cards(account_id)

    async def link(self, account_id: int, id_tag: str, label: str | None = None) -> RfidCard:
        """The card, issued or the driver's own, now charges this account."""
        tag = check_tag(id_tag)
        name = (label or "").strip()[:60] or None
        async with self.uow() as uow:
            if await uow.rfid.is_session_token(tag):
                raise InvalidInput("this number is not an RFID card")
            card = await uow.rfid.get(tag)
            if card is None:
                linked = await uow.rfid.add(
                    tag,
                    account_id=account_id,
                    group_name=None,
                    label=name,
                    expires_at=None,
                    now=self.clock(),
                )
            else:
                if card.account_id not in (None, account_id):
                    raise InvalidInput("this card is linked to another account")
                await uow.rfid.link(tag, account_id, name or card.label)
                found = await uow.rfid.get(tag)
                assert found is not None
                linked = found
        await self._changed()
        return linked

    async def unlink(self, account_id: int, id_tag: str) -> None:
        """The card no longer charges this account (an issued card goes back to its
        group; the driver's own is forgotten)."""
        async with self.uow() as uow:
            card = await uow.rfid.get(id_tag)
            if card is None or card.account_id != account_id:
                raise NotFound("no such card")
            if card.group_name is not None:
                await uow.rfid.link(id_tag, None, card.label)
            else:
                await uow.rfid.delete(id_tag)
        await self._changed()

    # -- the charge a card starts (job ``transaction.started``) -------------------
    async def start_from_card(
        self, transaction_pk: int, id_tag: str, started_at: datetime
    ) -> SessionRecord | None:
        """A transaction a linked card started: its session, held and charging. None
        when the tag is no billable card (the charger was told so)."""
        card = await self.store.card(id_tag)
        if card is None or card.account_id is None or card.status != "Accepted":
            return None
        record = await self.sessions.by_transaction(transaction_pk)
        if record is None:
            record = await self._open(transaction_pk, card, started_at)
            if record is None:
                return None
        if record.state != S.CREATED:
            return record  # held already (a retry of this job)
        saved = next((c for c in await self.cards.cards(card.account_id, self.payments.name)
                      if c.is_default), None)  # fmt: skip
        if saved is None:
            return await self._refuse(record, None, "no saved card to charge")
        try:
            state = await self.payments.create_off_session_hold(
                HoldRequest(
                    record.id,
                    record.hold_minor,
                    record.currency,
                    f"Charging at {record.charger_id} connector {record.connector_id} (RFID)",
                    f"{record.id}:hold",
                ),
                saved.customer_ref,
                saved.method_ref,
            )
        except PaymentDeclined as exc:  # PaymentUnavailable: the job tries again
            return await self._refuse(record, exc.payment_ref, str(exc))
        if state.status != "requires_capture":
            return await self._refuse(record, state.ref, "the bank wants the driver to confirm")
        return await self._authorised(record, state.ref, state.card_brand, state.card_last4)

    async def _open(
        self, transaction_pk: int, card: RfidCard, started_at: datetime
    ) -> SessionRecord | None:
        info = await self.sessions.transaction_info(transaction_pk)
        if info is None or info.charger_id is None or info.connector_id is None:
            return None
        account = await self.accounts.find(card.account_id)
        groups = account.groups if account else ()
        if card.group_name and card.group_name not in groups:
            groups = (*groups, card.group_name)
        audiences = ("guest", *(f"member:{g}" for g in groups))
        view = await self.reservations.connector(info.charger_id, info.connector_id, audiences)
        now = self.clock()
        try:
            async with self.uow() as uow:
                return await uow.sessions.create(
                    {
                        "id": secrets.token_urlsafe(24),
                        "charger_id": info.charger_id,
                        "connector_id": info.connector_id,
                        "owner_hash": "rfid",  # nobody's browser: the account's only
                        "account_id": card.account_id,
                        "lang": "en",
                        "tariff_pk": view.tariff_pk,
                        "time_zone": view.place.time_zone,
                        "currency": view.hold.currency,
                        "hold_minor": view.hold.minor,
                        "id_tag": secrets.token_hex(10),
                        "payment_provider": self.payments.name,
                        "transaction_pk": transaction_pk,
                        "started_at": started_at,
                        "deadline_at": deadline_for(S.CREATED, now, self.timeouts),
                    }
                )
        except ConnectorTaken:
            # Someone's reservation holds this connector: the card's transaction stops.
            async with self.uow() as uow:
                await _stop_transaction(uow, transaction_pk, info.charger_id, None)
            return None

    async def _authorised(
        self, record: SessionRecord, ref: str, brand: str | None, last4: str | None
    ) -> SessionRecord | None:
        now = self.clock()
        info = await self.sessions.transaction_info(record.transaction_pk or 0)
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None or current.state != S.CREATED:
                return current
            current = await uow.sessions.update(current, payment_ref=ref)
            await uow.payments.open(current.id, self.payments.name, ref, current.currency)
            moved = await uow.sessions.move(
                current,
                S.AUTHORIZED,
                authorized_at=now,
                start_deadline=now,
                card_brand=brand,
                card_last4=last4,
            )
            hold = await uow.payments.by_ref(ref)
            if hold is not None:
                await uow.payments.post(
                    hold,
                    f"authorise:{moved.id}",
                    authorised(moved.hold_minor, moved.currency),
                    status="authorised",
                    authorised_minor=moved.hold_minor,
                )
            charging = await uow.sessions.move(
                moved,
                S.CHARGING,
                deadline_at=deadline_for(
                    S.CHARGING, now, self.timeouts, last_sign_at=moved.started_at or now
                ),
            )
            if info is not None and info.stopped_at is not None:
                # The card's charge ended before its hold was in: settle it now.
                await uow.jobs.add(
                    NewJob(
                        JobKind.TRANSACTION_ENDED,
                        f"tx_ended:{charging.transaction_pk}",
                        {"transaction_pk": charging.transaction_pk, "id_tag": None},
                        charger_id=charging.charger_id,
                        rearm=True,
                    )
                )
        await publish(self.live, charging)
        return charging

    async def _refuse(
        self, record: SessionRecord, payment_ref: str | None, why: str
    ) -> SessionRecord | None:
        async with self.uow() as uow:
            current = await uow.sessions.get(record.id)
            if current is None or current.state != S.CREATED:
                return current
            if payment_ref is not None and current.payment_ref is None:
                current = await uow.sessions.update(current, payment_ref=payment_ref)
                await uow.payments.open(
                    current.id, self.payments.name, payment_ref, current.currency
                )
            moved = await cancel_reservation(uow, current, Reason.PAYMENT_DECLINED, self.timeouts)
            await _stop_transaction(uow, current.transaction_pk, current.charger_id, current.id)
            await uow.sessions.alert(moved, "rfid_not_paid", {"why": why[:200]})
            # The driver hears of it by push, with what to do (job: once per session).
            await uow.jobs.add(
                NewJob(JobKind.CARD_REFUSED, f"card_refused:{moved.id}", session_id=moved.id)
            )
        log.warning("session %s: the card's hold was refused (%s)", record.id, why)
        await publish(self.live, moved)
        return moved


async def _stop_transaction(
    uow: UnitOfWork, transaction_pk: int | None, charger_id: str, session_id: str | None
) -> None:
    if transaction_pk is None:
        return
    await uow.jobs.add(
        NewJob(
            JobKind.LATE_STOP,
            f"late_stop:{transaction_pk}",
            {"transaction_pk": transaction_pk},
            session_id=session_id,
            charger_id=charger_id,
        )
    )
