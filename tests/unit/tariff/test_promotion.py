"""Promotion codes: checks on given counts, a PROMOTION line, never below zero."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tariff_cases import example, quick_quote, totals

from plugpay.domain.money import Money
from plugpay.domain.tariff import (
    Promotion,
    PromotionError,
    PromotionRefusal,
    apply_promotion,
    breakdown_to_json,
    check_promotion,
    find_promotion,
)

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)


def session(kwh: int = 20):  # type: ignore[no-untyped-def]
    return quick_quote(example("tariff_9_025kwh_start.json"), kwh, 60)  # 5.50 / 6.10


def test_percent_off_is_its_own_line() -> None:
    b = apply_promotion(session(), Promotion.percent_off("spring24", Decimal(10)))
    assert totals(b) == ("4.95", "5.49")
    line = breakdown_to_json(b)["lines"][-1]
    assert line == {
        "dimension": "PROMOTION",
        "quantity": "1",
        "unit": "session",
        "amount_excl_vat": "-0.55",
        "vat_rate": None,
        "amount_incl_vat": "-0.61",
    }


def test_amount_off_is_incl_vat_and_splits_proportionally() -> None:
    b = apply_promotion(session(), Promotion.amount_off("FIVER", Money(500, "EUR")))
    assert totals(b) == ("0.99", "1.10")


def test_a_discount_never_takes_the_total_below_zero() -> None:
    b = apply_promotion(session(1), Promotion.amount_off("BIG", Money(5000, "EUR")))
    assert totals(b) == ("0.00", "0.00")
    b = apply_promotion(session(1), Promotion.percent_off("ALL", Decimal(100)))
    assert totals(b) == ("0.00", "0.00")


def test_amount_off_without_vat() -> None:
    b = quick_quote(example("tariff_14_step_size.json"), 1, 35)  # 1.20, no VAT
    assert totals(apply_promotion(b, Promotion.amount_off("X", Money(100, "EUR")))) == (
        "0.20",
        None,
    )


def test_codes_are_case_insensitive() -> None:
    promos = [Promotion.percent_off("Summer-24", Decimal(5))]
    assert find_promotion("  summer-24 ", promos) is promos[0]
    assert find_promotion("winter", promos) is None
    with pytest.raises(PromotionError):
        find_promotion("no spaces", promos)


@pytest.mark.parametrize(
    ("kwargs", "refusal"),
    [
        ({"at": datetime(2024, 5, 1, tzinfo=UTC)}, PromotionRefusal.NOT_YET_VALID),
        ({"at": datetime(2024, 7, 1, tzinfo=UTC)}, PromotionRefusal.EXPIRED),
        ({"uses_total": 100}, PromotionRefusal.USED_UP),
        ({"uses_by_driver": 1}, PromotionRefusal.USED_UP_BY_DRIVER),
        ({"amount_due": Decimal("9.99")}, PromotionRefusal.BELOW_MINIMUM_SPEND),
        ({"currency": "CHF"}, PromotionRefusal.WRONG_CURRENCY),
        ({"uses_total": 99, "amount_due": Decimal(10)}, None),
    ],
)
def test_checks_use_the_counts_passed_in(kwargs: dict, refusal: PromotionRefusal | None) -> None:
    promo = Promotion.amount_off(
        "JUNE",
        Money(200, "EUR"),
        valid_from=datetime(2024, 6, 1, tzinfo=UTC),
        valid_until=datetime(2024, 7, 1, tzinfo=UTC),
        max_uses=100,
        max_uses_per_driver=1,
        min_spend=Money(1000, "EUR"),
    )
    arguments = {"at": NOW, "currency": "EUR", **kwargs}
    check = check_promotion(promo, **arguments)
    assert check.refusal is refusal
    assert check.ok is (refusal is None)
    assert bool(check.message) is (refusal is not None)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Promotion.percent_off("A", Decimal(0)), "percent"),
        (lambda: Promotion.percent_off("A", Decimal(101)), "percent"),
        (lambda: Promotion.amount_off("A", Money(0, "EUR")), "amount"),
        (lambda: Promotion.percent_off("A", Decimal(5), max_uses=0), "max_uses"),
        (lambda: Promotion.percent_off("A", Decimal(5), valid_from=datetime(2024, 1, 1)), "aware"),
        (
            lambda: Promotion.percent_off(
                "A", Decimal(5), valid_from=NOW, valid_until=datetime(2024, 1, 1, tzinfo=UTC)
            ),
            "valid_from",
        ),
    ],
)
def test_bad_promotions_are_refused(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PromotionError, match=message):
        build()


def test_an_amount_in_another_currency_cannot_apply() -> None:
    with pytest.raises(PromotionError, match="cannot apply"):
        apply_promotion(session(), Promotion.amount_off("X", Money(100, "USD")))
