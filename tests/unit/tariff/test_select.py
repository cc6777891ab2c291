"""Which tariff applies: contract, driver group, connector, site default."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from plugpay.domain.tariff import (
    Tariff,
    TariffCandidate,
    TariffSource,
    parse_tariff,
    select_tariff,
)

AT = datetime(2024, 6, 1, 12, tzinfo=UTC)


def t(name: str, **extra: Any) -> Tariff:
    element = {"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}
    return parse_tariff({"id": name, "currency": "EUR", "elements": [element], **extra})


def pick(
    *candidates: tuple[Tariff, TariffSource], ad_hoc: bool = True, at: datetime = AT
) -> str | None:
    chosen = select_tariff([TariffCandidate(c, s) for c, s in candidates], at, ad_hoc=ad_hoc)
    return None if chosen is None else chosen.id


def test_the_most_specific_source_wins() -> None:
    site, connector, group, contract = t("site"), t("connector"), t("group"), t("contract")
    assert (
        pick((site, TariffSource.SITE_DEFAULT), (connector, TariffSource.CONNECTOR)) == "connector"
    )
    assert (
        pick(
            (site, TariffSource.SITE_DEFAULT),
            (group, TariffSource.DRIVER_GROUP),
            (contract, TariffSource.CONTRACT),
            (connector, TariffSource.CONNECTOR),
        )
        == "contract"
    )
    assert pick() is None


def test_validity_window_and_order_within_a_source() -> None:
    old = t("old", end_date_time="2024-05-31T22:00:00Z")
    new = t("new", start_date_time="2024-05-31T22:00:00Z")
    assert pick((old, TariffSource.CONNECTOR), (new, TariffSource.CONNECTOR)) == "new"
    earlier = datetime(2024, 5, 1, tzinfo=UTC)
    assert pick((old, TariffSource.CONNECTOR), (new, TariffSource.CONNECTOR), at=earlier) == "old"
    expired_contract = t("contract", end_date_time="2024-01-01T00:00:00Z")
    assert pick((expired_contract, TariffSource.CONTRACT), (new, TariffSource.CONNECTOR)) == "new"


def test_tariff_type_must_suit_the_payment() -> None:
    ad_hoc, regular, cheap, untyped = (
        t("ad_hoc", type="AD_HOC_PAYMENT"),
        t("regular", type="REGULAR"),
        t("cheap", type="PROFILE_CHEAP"),
        t("untyped"),
    )
    source = TariffSource.CONNECTOR
    options = ((untyped, source), (regular, source), (ad_hoc, source), (cheap, source))
    assert pick(*options, ad_hoc=True) == "ad_hoc"
    assert pick(*options, ad_hoc=False) == "regular"
    assert pick((cheap, source), ad_hoc=False) is None
    assert pick((untyped, source), (cheap, source), ad_hoc=False) == "untyped"
