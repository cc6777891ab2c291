"""The tariff engine: OCPI 2.2.1 tariffs, and the one pricing function for previews,
live updates, capture and invoices.

Public API (import from here):

* model: :class:`Tariff`, :class:`TariffElement`, :class:`PriceComponent`,
  :class:`TariffRestrictions`, :class:`Price`, :class:`DisplayText`,
  :class:`Dimension`, :class:`DayOfWeek`, :class:`TariffType`,
  :class:`ReservationRestriction`
* OCPI JSON: :func:`parse_tariff`, :func:`tariff_to_ocpi`, :func:`tariff_to_json`
* sessions: :class:`Sample`, :class:`SessionTrace`
* pricing: :func:`price_session`, :class:`IncrementalPricer`, :func:`quote`,
  :func:`quote_periods`, :class:`PriceBreakdown`, :class:`PriceLine`,
  :func:`breakdown_to_json`
* errors: :class:`TariffError`, :class:`SessionTraceError`, :class:`PricerStateError`
"""

from plugpay.domain.tariff.breakdown import PriceBreakdown, PriceLine, breakdown_to_json
from plugpay.domain.tariff.errors import PricerStateError, SessionTraceError, TariffError
from plugpay.domain.tariff.incremental import IncrementalPricer
from plugpay.domain.tariff.model import (
    DayOfWeek,
    Dimension,
    DisplayText,
    Price,
    PriceComponent,
    ReservationRestriction,
    Tariff,
    TariffElement,
    TariffRestrictions,
    TariffType,
)
from plugpay.domain.tariff.parse import parse_tariff
from plugpay.domain.tariff.pricing import price_session, quote, quote_periods
from plugpay.domain.tariff.serialize import tariff_to_json, tariff_to_ocpi
from plugpay.domain.tariff.session import Sample, SessionTrace

__all__ = [
    "DayOfWeek",
    "Dimension",
    "DisplayText",
    "IncrementalPricer",
    "Price",
    "PriceBreakdown",
    "PriceComponent",
    "PriceLine",
    "PricerStateError",
    "ReservationRestriction",
    "Sample",
    "SessionTrace",
    "SessionTraceError",
    "Tariff",
    "TariffElement",
    "TariffError",
    "TariffRestrictions",
    "TariffType",
    "breakdown_to_json",
    "parse_tariff",
    "price_session",
    "quote",
    "quote_periods",
    "tariff_to_json",
    "tariff_to_ocpi",
]
