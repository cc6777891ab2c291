"""Promotion codes: a percentage or a fixed amount off a session's price.

Pure rules; whoever stores codes and counts their uses passes the counts in.

* A code is case-insensitive and compared after trimming ("spring24" is "SPRING24").
* Validity: ``valid_from`` inclusive, ``valid_until`` exclusive (UTC instants).
* Limits: ``max_uses`` over all drivers and ``max_uses_per_driver``, checked
  against the counts of *earlier* uses.
* ``min_spend``: the price before the discount (incl. VAT when the tariff gives
  VAT) must reach it; a live session can only be checked for it at the end.
* The discount is its own receipt line (dimension PROMOTION, negative amounts),
  applied after min_price/max_price, and never takes a total below zero. A
  fixed amount is what the driver sees, i.e. incl. VAT when the tariff gives
  VAT; its excl.-VAT part is proportional to the session's excl./incl. totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from plugpay.domain.money import Money, round_decimal
from plugpay.domain.tariff.breakdown import PROMOTION, UNIT_SESSION, PriceBreakdown, PriceLine
from plugpay.domain.tariff.errors import PromotionError

_HUNDRED = Decimal(100)


class DiscountKind(StrEnum):
    PERCENT = "PERCENT"
    AMOUNT = "AMOUNT"


class PromotionRefusal(StrEnum):
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    USED_UP = "USED_UP"
    USED_UP_BY_DRIVER = "USED_UP_BY_DRIVER"
    BELOW_MINIMUM_SPEND = "BELOW_MINIMUM_SPEND"
    WRONG_CURRENCY = "WRONG_CURRENCY"


_MESSAGES = {
    PromotionRefusal.NOT_YET_VALID: "this code is not valid yet",
    PromotionRefusal.EXPIRED: "this code has expired",
    PromotionRefusal.USED_UP: "this code has been used up",
    PromotionRefusal.USED_UP_BY_DRIVER: "you have already used this code",
    PromotionRefusal.BELOW_MINIMUM_SPEND: "the session does not reach this code's minimum spend",
    PromotionRefusal.WRONG_CURRENCY: "this code is for another currency",
}


def normalise_code(code: str) -> str:
    """Trimmed, upper-case; letters, digits, '-' and '_' only."""
    text = code.strip().upper()
    if not text or len(text) > 64 or not all(ch.isalnum() or ch in "-_" for ch in text):
        raise PromotionError("a promotion code is 1 to 64 letters, digits, '-' or '_'")
    return text


@dataclass(frozen=True, slots=True)
class Promotion:
    """A promotion; build it with :meth:`percent_off` or :meth:`amount_off`."""

    code: str
    kind: DiscountKind
    percent: Decimal | None = None
    amount: Money | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    max_uses: int | None = None
    max_uses_per_driver: int | None = None
    min_spend: Money | None = None

    def __post_init__(self) -> None:
        if self.code != normalise_code(self.code):
            raise PromotionError(f"promotion code {self.code!r} is not normalised")
        if self.kind is DiscountKind.PERCENT:
            if self.percent is None or not Decimal(0) < self.percent <= _HUNDRED:
                raise PromotionError("percent: must be more than 0 and at most 100")
        elif self.amount is None or self.amount.minor <= 0:
            raise PromotionError("amount: must be more than zero")
        for name in ("valid_from", "valid_until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise PromotionError(f"{name}: must be timezone-aware")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from >= self.valid_until
        ):
            raise PromotionError("valid_from: must be before valid_until")
        for name in ("max_uses", "max_uses_per_driver"):
            limit = getattr(self, name)
            if limit is not None and limit < 1:
                raise PromotionError(f"{name}: must be at least 1")
        if (
            self.amount is not None
            and self.min_spend is not None
            and self.amount.currency != self.min_spend.currency
        ):
            raise PromotionError("min_spend: must be in the currency of the amount")

    @classmethod
    def percent_off(
        cls,
        code: str,
        percent: Decimal,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        max_uses: int | None = None,
        max_uses_per_driver: int | None = None,
        min_spend: Money | None = None,
    ) -> Promotion:
        return cls(
            normalise_code(code),
            DiscountKind.PERCENT,
            percent=percent,
            valid_from=valid_from,
            valid_until=valid_until,
            max_uses=max_uses,
            max_uses_per_driver=max_uses_per_driver,
            min_spend=min_spend,
        )

    @classmethod
    def amount_off(
        cls,
        code: str,
        amount: Money,
        *,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        max_uses: int | None = None,
        max_uses_per_driver: int | None = None,
        min_spend: Money | None = None,
    ) -> Promotion:
        return cls(
            normalise_code(code),
            DiscountKind.AMOUNT,
            amount=amount,
            valid_from=valid_from,
            valid_until=valid_until,
            max_uses=max_uses,
            max_uses_per_driver=max_uses_per_driver,
            min_spend=min_spend,
        )


@dataclass(frozen=True, slots=True)
class PromotionCheck:
    refusal: PromotionRefusal | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None

    @property
    def message(self) -> str:
        return "" if self.refusal is None else _MESSAGES[self.refusal]


def find_promotion(code: str, promotions: list[Promotion]) -> Promotion | None:
    wanted = normalise_code(code)
    return next((p for p in promotions if p.code == wanted), None)


def check_promotion(
    promotion: Promotion,
    *,
    at: datetime,
    currency: str,
    uses_total: int = 0,
    uses_by_driver: int = 0,
    amount_due: Decimal | None = None,
) -> PromotionCheck:
    """Whether ``promotion`` may be used at ``at`` by a driver with these earlier uses.

    ``amount_due`` (before the discount, major units) is checked against
    ``min_spend`` when given; leave it out when the price is not known yet.
    """
    if promotion.valid_from is not None and at < promotion.valid_from:
        return PromotionCheck(PromotionRefusal.NOT_YET_VALID)
    if promotion.valid_until is not None and at >= promotion.valid_until:
        return PromotionCheck(PromotionRefusal.EXPIRED)
    for money in (promotion.amount, promotion.min_spend):
        if money is not None and money.currency != currency:
            return PromotionCheck(PromotionRefusal.WRONG_CURRENCY)
    if promotion.max_uses is not None and uses_total >= promotion.max_uses:
        return PromotionCheck(PromotionRefusal.USED_UP)
    per_driver = promotion.max_uses_per_driver
    if per_driver is not None and uses_by_driver >= per_driver:
        return PromotionCheck(PromotionRefusal.USED_UP_BY_DRIVER)
    if (
        amount_due is not None
        and promotion.min_spend is not None
        and amount_due < promotion.min_spend.to_decimal()
    ):
        return PromotionCheck(PromotionRefusal.BELOW_MINIMUM_SPEND)
    return PromotionCheck()


def apply_promotion(breakdown: PriceBreakdown, promotion: Promotion) -> PriceBreakdown:
    """``breakdown`` with a PROMOTION line; totals never go below zero.

    Check the promotion first (:func:`check_promotion`); this only prices it.
    """
    exponent = Money.zero(breakdown.currency).exponent
    excl_total = breakdown.total_excl_vat
    incl_total = breakdown.total_incl_vat
    gross_total = excl_total if incl_total is None else incl_total
    if promotion.kind is DiscountKind.PERCENT:
        assert promotion.percent is not None
        off_excl = round_decimal(excl_total * promotion.percent / _HUNDRED, exponent)
        off_incl = (
            None
            if incl_total is None
            else round_decimal(incl_total * promotion.percent / _HUNDRED, exponent)
        )
    else:
        assert promotion.amount is not None
        if promotion.amount.currency != breakdown.currency:
            raise PromotionError(
                f"a {promotion.amount.currency} promotion cannot apply to a "
                f"{breakdown.currency} price"
            )
        off_gross = min(promotion.amount.to_decimal(), max(gross_total, Decimal(0)))
        if incl_total is None:
            off_excl, off_incl = off_gross, None
        else:
            off_incl = off_gross
            off_excl = (
                round_decimal(off_gross * excl_total / incl_total, exponent)
                if incl_total > 0
                else off_gross - off_gross
            )
    off_excl = min(off_excl, max(excl_total, Decimal(0)))
    if off_incl is not None and incl_total is not None:
        off_incl = min(off_incl, max(incl_total, Decimal(0)))
    line = PriceLine(
        PROMOTION,
        Decimal(1),
        UNIT_SESSION,
        None,
        -off_excl,
        None,
        None if off_incl is None else -off_incl,
    )
    return breakdown.with_line(line)
