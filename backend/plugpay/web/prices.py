"""The price texts on the connector page: the tariff engine's display, for now and here."""

from __future__ import annotations

from datetime import UTC, datetime

from plugpay.domain.tariff import Tariff
from plugpay.domain.tariff.display import TariffDisplay, display_tariff


def price_display(tariff: Tariff, lang: str, time_zone: str) -> TariffDisplay:
    """Every price component with VAT, in order, and a worked example starting now."""
    return display_tariff(tariff, locale=lang, tz=time_zone, example_start=datetime.now(UTC))
