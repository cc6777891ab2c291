"""Saved cards: save one (a SetupIntent at the provider), pick the default, remove one.

The provider keeps the card; plugpay keeps which card is whose (brand, last
four digits, expiry) and which is the default for one-tap starts. A setup
belongs to the account whose provider customer it was made for: a setup id
from anyone else's browser is "not found".
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from plugpay.domain.errors import NotFound
from plugpay.services.jobs import GiveUp, RetryLater, backoff
from plugpay.services.ports.accounts import Account
from plugpay.services.ports.cards import CardStore, NewCard, SavedCard
from plugpay.services.ports.jobs import Job
from plugpay.services.ports.payments import (
    DemoSetupForm,
    PaymentDeclined,
    PaymentGateway,
    PaymentUnavailable,
    SetupState,
)
from plugpay.services.ports.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SetupOutcome:
    card: SavedCard | None  # saved
    problem: str | None = None  # why not, in words for the driver (translated by the page)
    needs_action: bool = False  # the bank's check, in the browser


class SavedCardService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: CardStore,
        payments: PaymentGateway,
        demo: DemoSetupForm | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.uow = uow
        self.store = store
        self.payments = payments
        self.demo = demo
        self.clock = clock
        # An account's RFID cards work only with a saved card: chargers' lists follow.
        self.on_change = on_change

    async def _changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()

    async def cards(self, account_id: int) -> list[SavedCard]:
        return await self.store.cards(account_id, self.payments.name)

    async def default(self, account_id: int) -> SavedCard | None:
        cards = await self.cards(account_id)
        return next((c for c in cards if c.is_default), None)

    async def customer(self, account: Account) -> str:
        """The account's customer at the provider, made on first use. The idempotency
        key is the account's: a crash after the provider made it finds the same one."""
        async with self.uow() as uow:
            known = await uow.cards.customer_of(account.id, self.payments.name)
        if known is not None:
            return known
        made = await self.payments.create_customer(
            f"account:{account.id}", account.email, f"customer:{account.id}"
        )
        async with self.uow() as uow:
            return await uow.cards.add_customer(account.id, self.payments.name, made, self.clock())

    async def begin_setup(self, account: Account) -> SetupState:
        """Raises PaymentUnavailable when the provider does not answer."""
        customer = await self.customer(account)
        return await self.payments.create_setup(
            customer, f"setup:{account.id}:{secrets.token_urlsafe(12)}"
        )

    async def setup_of(self, account: Account, setup_ref: str) -> SetupState:
        """The setup, if it was made for this account's customer; else NotFound."""
        if not 8 <= len(setup_ref) <= 100:
            raise NotFound("no such card setup")
        async with self.uow() as uow:
            customer = await uow.cards.customer_of(account.id, self.payments.name)
        try:
            setup = await self.payments.get_setup(setup_ref)
        except PaymentDeclined:
            raise NotFound("no such card setup") from None
        if customer is None or setup.customer_ref != customer:
            raise NotFound("no such card setup")
        return setup

    async def finish_setup(self, account: Account, setup_ref: str) -> SetupOutcome:
        """Read the setup from the provider (never trust the browser) and keep the card
        once it is saved."""
        setup = await self.setup_of(account, setup_ref)
        if setup.status == "requires_action":
            return SetupOutcome(None, "Your bank needs you to confirm this card.", True)
        if setup.status != "succeeded" or setup.method_ref is None:
            return SetupOutcome(None, setup.decline_message or "The card was not saved.")
        card = NewCard(setup.method_ref, setup.card_brand, setup.card_last4)
        for method in await self.payments.list_methods(setup.customer_ref):
            if method.ref == setup.method_ref:
                card = NewCard(
                    method.ref,
                    method.card_brand,
                    method.card_last4,
                    method.exp_month,
                    method.exp_year,
                )
        async with self.uow() as uow:
            saved = await uow.cards.add(
                account.id, self.payments.name, setup.customer_ref, card, self.clock()
            )
        log.info("account %s saved card %s", account.id, saved.id)
        await self._changed()
        return SetupOutcome(saved)

    async def demo_setup(self, account: Account, setup_ref: str, card: str) -> SetupOutcome:
        """The demo provider's card form for saving a card."""
        if self.demo is None:
            raise NotFound("no demo payments here")
        setup = await self.setup_of(account, setup_ref)
        if setup.status in ("requires_payment_method", "requires_confirmation"):
            try:
                await self.demo.confirm_setup(setup_ref, card)
            except ValueError:
                return SetupOutcome(None, "Choose one of the test cards.")
        return await self.finish_setup(account, setup_ref)

    async def demo_authenticate(self, account: Account, setup_ref: str, ok: bool) -> SetupOutcome:
        if self.demo is None:
            raise NotFound("no demo payments here")
        setup = await self.setup_of(account, setup_ref)
        if setup.status == "requires_action":
            await self.demo.authenticate_setup(setup_ref, ok)
        return await self.finish_setup(account, setup_ref)

    async def remove(self, account: Account, card_id: int) -> None:
        """Forget the card here and at the provider (NotFound for anyone else's).
        Raises PaymentUnavailable when the provider does not answer: nothing changed."""
        async with self.uow() as uow:
            card = await uow.cards.get(account.id, card_id)
        if card is None:
            raise NotFound("no such card")
        await self.payments.detach_method(card.method_ref)
        async with self.uow() as uow:
            current = await uow.cards.get(account.id, card_id)
            if current is not None:
                await uow.cards.remove(current, self.clock())
        await self._changed()

    async def run_delete_customer(self, job: Job) -> None:
        """Delete a deleted account's customer, and so its cards, at the provider
        (job ``payment.delete_customer``); tried again while the provider is down."""
        provider, ref = str(job.payload["provider"]), str(job.payload["customer_ref"])
        if provider != self.payments.name:
            raise GiveUp(f"customer {ref} is at {provider}, not at {self.payments.name}")
        try:
            await self.payments.delete_customer(ref)
        except PaymentUnavailable as exc:
            raise RetryLater(str(exc), backoff(job.attempts, base=5.0, cap=600.0)) from None

    async def make_default(self, account: Account, card_id: int) -> None:
        async with self.uow() as uow:
            card = await uow.cards.get(account.id, card_id)
            if card is None:
                raise NotFound("no such card")
            await uow.cards.make_default(card)
