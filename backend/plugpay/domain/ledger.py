"""The money ledger: every movement of a payment as a balanced journal.

Double entry in integer minor units: each journal's lines sum to zero, so the
ledger as a whole always balances. A debit is positive, a credit negative.

A card hold is not money received, but it is money the driver can no longer
spend, so it is kept as a memo pair (``driver_hold`` against ``hold_offset``)
that captures, releases and expiry take back to zero. What the provider
collects is ``driver_receivable``; it is earned as ``operator_revenue`` plus
``vat_payable``; refunds and disputes take it back again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from plugpay.domain.errors import InvalidInput


class Account(StrEnum):
    DRIVER_HOLD = "driver_hold"  # reserved on the driver's card (debit)
    HOLD_OFFSET = "hold_offset"  # the memo pair's other side (credit)
    DRIVER_RECEIVABLE = "driver_receivable"  # captured, collected by the provider (debit)
    OPERATOR_REVENUE = "operator_revenue"  # earned, excl. VAT (credit)
    VAT_PAYABLE = "vat_payable"  # VAT collected for the tax office (credit)
    REFUNDS = "refunds"  # revenue given back (debit)
    DISPUTES = "disputes"  # withdrawn by a card dispute (debit)


class Movement(StrEnum):
    AUTHORISED = "authorised"
    CAPTURED = "captured"
    RELEASED = "released"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    DISPUTE_WON = "dispute_won"


A = Account


@dataclass(frozen=True)
class Journal:
    """One movement of ``amount``: lines (account, signed amount) that sum to zero."""

    movement: Movement
    currency: str
    amount: int
    lines: tuple[tuple[Account, int], ...]

    def __post_init__(self) -> None:
        if sum(amount for _, amount in self.lines) != 0:
            raise ValueError(f"unbalanced {self.movement} journal: {self.lines}")

    @classmethod
    def of_lines(
        cls, movement: Movement, currency: str, lines: tuple[tuple[Account, int], ...]
    ) -> Journal:
        """A journal read back: in every movement its amount is its largest line."""
        return cls(movement, currency, max((abs(a) for _, a in lines), default=0), lines)


def _journal(
    movement: Movement, currency: str, amount: int, *lines: tuple[Account, int]
) -> Journal:
    return Journal(movement, currency, amount, tuple((a, m) for a, m in lines if m != 0))


def _positive(amount: int, what: str) -> None:
    if amount <= 0:
        raise InvalidInput(f"{what} must be a positive amount")


def authorised(amount: int, currency: str) -> Journal:
    _positive(amount, "a hold")
    return _journal(
        Movement.AUTHORISED, currency, amount, (A.DRIVER_HOLD, amount), (A.HOLD_OFFSET, -amount)
    )


def captured(amount: int, vat: int, currency: str) -> Journal:
    """``amount`` (incl. ``vat``) taken from the hold; the rest is released with it."""
    _positive(amount, "a capture")
    if not 0 <= vat <= amount:
        raise InvalidInput("VAT must lie between zero and the amount")
    return _journal(
        Movement.CAPTURED,
        currency,
        amount,
        (A.HOLD_OFFSET, amount),
        (A.DRIVER_HOLD, -amount),
        (A.DRIVER_RECEIVABLE, amount),
        (A.OPERATOR_REVENUE, -(amount - vat)),
        (A.VAT_PAYABLE, -vat),
    )


def released(amount: int, currency: str, *, expired: bool = False) -> Journal:
    """What is left of a hold goes back to the driver (or lapsed at the provider)."""
    _positive(amount, "a release")
    movement = Movement.EXPIRED if expired else Movement.RELEASED
    return _journal(movement, currency, amount, (A.HOLD_OFFSET, amount), (A.DRIVER_HOLD, -amount))


def refunded(amount: int, vat: int, currency: str) -> Journal:
    _positive(amount, "a refund")
    if not 0 <= vat <= amount:
        raise InvalidInput("VAT must lie between zero and the amount")
    return _journal(
        Movement.REFUNDED,
        currency,
        amount,
        (A.REFUNDS, amount - vat),
        (A.VAT_PAYABLE, vat),
        (A.DRIVER_RECEIVABLE, -amount),
    )


def disputed(amount: int, currency: str) -> Journal:
    _positive(amount, "a dispute")
    return _journal(
        Movement.DISPUTED, currency, amount, (A.DISPUTES, amount), (A.DRIVER_RECEIVABLE, -amount)
    )


def dispute_won(amount: int, currency: str) -> Journal:
    _positive(amount, "a dispute")
    return _journal(
        Movement.DISPUTE_WON, currency, amount, (A.DRIVER_RECEIVABLE, amount), (A.DISPUTES, -amount)
    )


def vat_share(part: int, total: int, vat_total: int) -> int:
    """The VAT inside ``part`` of an amount ``total`` that carries ``vat_total`` of VAT,
    rounded half up (a partial capture or refund carries VAT in proportion)."""
    if total <= 0 or part <= 0 or vat_total <= 0:
        return 0
    if part >= total:
        return vat_total
    return (2 * part * vat_total + total) // (2 * total)


@dataclass(frozen=True)
class PaymentBalance:
    """What a payment's journals add up to."""

    authorised: int = 0
    captured: int = 0
    released: int = 0
    refunded: int = 0
    disputed: int = 0

    @property
    def held(self) -> int:
        return self.authorised - self.captured - self.released

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded - self.disputed


def balance_of(journals: list[Journal]) -> PaymentBalance:
    totals = dict.fromkeys(Movement, 0)
    for journal in journals:
        totals[journal.movement] += journal.amount
    return PaymentBalance(
        authorised=totals[Movement.AUTHORISED],
        captured=totals[Movement.CAPTURED],
        released=totals[Movement.RELEASED] + totals[Movement.EXPIRED],
        refunded=totals[Movement.REFUNDED],
        disputed=totals[Movement.DISPUTED] - totals[Movement.DISPUTE_WON],
    )
