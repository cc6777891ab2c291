"""The tariff engine: OCPI 2.2.1 tariffs, and the one pricing function for previews,
live updates, capture and invoices.

Public API (import from here):

* model: :class:`Tariff`, :class:`TariffElement`, :class:`PriceComponent`,
  :class:`TariffRestrictions`, :class:`Price`, :class:`DisplayText`,
  :class:`Dimension`, :class:`DayOfWeek`, :class:`TariffType`,
  :class:`ReservationRestriction`
* OCPI JSON: :func:`parse_tariff`, :func:`tariff_to_ocpi`, :func:`tariff_to_json`
* sessions: :class:`Sample`, :class:`SessionTrace`; site-local times:
  :func:`site_instant`, :func:`local_time_kind`, :class:`LocalTimeKind`
* pricing: :func:`price_session`, :class:`IncrementalPricer`, :func:`quote`,
  :func:`quote_periods`, :class:`PriceBreakdown`, :class:`PriceLine`,
  :func:`breakdown_to_json`
* promotions: :class:`Promotion`, :func:`check_promotion`, :func:`apply_promotion`,
  :func:`find_promotion`
* display: :func:`display_tariff`, :class:`DisplayItem`,
  :class:`TariffDisplay`
* choice: :func:`select_tariff`, :class:`TariffCandidate`, :class:`TariffSource`
* errors: :class:`TariffError`, :class:`SessionTraceError`, :class:`PricerStateError`,
  :class:`PromotionError`
"""

from plugpay.domain.tariff.breakdown import (
    PriceBreakdown,
    PriceLine,
    breakdown_to_json,
    breakdown_to_record,
)
from plugpay.domain.tariff.display import (
    DisplayItem,
    TariffDisplay,
    display_tariff,
)
from plugpay.domain.tariff.errors import (
    PricerStateError,
    PromotionError,
    SessionTraceError,
    TariffError,
)
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
from plugpay.domain.tariff.promotion import (
    DiscountKind,
    Promotion,
    PromotionCheck,
    PromotionRefusal,
    apply_promotion,
    check_promotion,
    find_promotion,
)
from plugpay.domain.tariff.select import TariffCandidate, TariffSource, select_tariff
from plugpay.domain.tariff.serialize import tariff_to_json, tariff_to_ocpi
from plugpay.domain.tariff.session import (
    LocalTimeKind,
    Sample,
    SessionTrace,
    local_time_kind,
    site_instant,
)

__all__ = [
    "DayOfWeek",
    "Dimension",
    "DiscountKind",
    "DisplayItem",
    "DisplayText",
    "IncrementalPricer",
    "LocalTimeKind",
    "Price",
    "PriceBreakdown",
    "PriceComponent",
    "PriceLine",
    "PricerStateError",
    "Promotion",
    "PromotionCheck",
    "PromotionError",
    "PromotionRefusal",
    "ReservationRestriction",
    "Sample",
    "SessionTrace",
    "SessionTraceError",
    "Tariff",
    "TariffCandidate",
    "TariffDisplay",
    "TariffElement",
    "TariffError",
    "TariffRestrictions",
    "TariffSource",
    "TariffType",
    "apply_promotion",
    "breakdown_to_json",
    "breakdown_to_record",
    "check_promotion",
    "display_tariff",
    "find_promotion",
    "local_time_kind",
    "parse_tariff",
    "price_session",
    "quote",
    "quote_periods",
    "select_tariff",
    "site_instant",
    "tariff_to_json",
    "tariff_to_ocpi",
]
