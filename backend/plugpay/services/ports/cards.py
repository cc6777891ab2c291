"""Cards an account saved at the payment provider, for one-tap starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SavedCard:
    id: int
    account_id: int
    provider: str
    customer_ref: str
    method_ref: str
    card_brand: str | None
    card_last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool
    created_at: datetime

    @property
    def label(self) -> str:
        """ "Visa •••• 4242" """
        brand = (self.card_brand or "card").replace("_", " ").title()
        return f"{brand} •••• {self.card_last4}" if self.card_last4 else brand


@dataclass(frozen=True, slots=True)
class NewCard:
    method_ref: str
    card_brand: str | None
    card_last4: str | None
    exp_month: int | None = None
    exp_year: int | None = None


class CardRepository(Protocol):
    """Inside a unit of work."""

    async def customer_of(self, account_id: int, provider: str) -> str | None: ...
    async def customers(self, account_id: int) -> list[tuple[str, str]]:
        """(provider, customer ref) of every customer the account has."""
        ...

    async def add_customer(
        self, account_id: int, provider: str, customer_ref: str, now: datetime
    ) -> str:
        """The account's customer at the provider: the one recorded first wins."""
        ...

    async def add(
        self, account_id: int, provider: str, customer_ref: str, card: NewCard, now: datetime
    ) -> SavedCard:
        """Saved (again: the same card once); the default when the account has none."""
        ...

    async def get(self, account_id: int, card_id: int) -> SavedCard | None:
        """The account's card, if it is the account's and not removed."""
        ...

    async def remove(self, card: SavedCard, now: datetime) -> None:
        """Removed; another card becomes the default if it was."""
        ...

    async def make_default(self, card: SavedCard) -> None: ...


class CardStore(Protocol):
    """Reads outside a unit of work."""

    async def cards(self, account_id: int, provider: str) -> list[SavedCard]:
        """The account's cards at this provider, the default first."""
        ...
