"""Which tariff applies to a session, from the candidates a site offers.

Precedence, most specific first:

1. CONTRACT: the driver's own contract or subscription;
2. DRIVER_GROUP: a price for a group the driver belongs to (fleet, staff);
3. CONNECTOR: the price set on the connector;
4. SITE_DEFAULT: the site's default price.

Within a source the candidates keep their given order (OCPI connectors list
``tariff_ids`` so that a new tariff can follow an old one). A candidate is
eligible when the session start lies in its [start_date_time, end_date_time)
and its ``type`` suits the payment: ad-hoc payment takes AD_HOC_PAYMENT or
untyped tariffs, anything else REGULAR or untyped ones; an exactly typed
tariff beats an untyped one of the same source. PROFILE_* tariffs need a
charging preference, which plugpay does not offer, so they never apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from plugpay.domain.tariff.model import Tariff, TariffType


class TariffSource(IntEnum):
    """Where a candidate tariff comes from; lower values take precedence."""

    CONTRACT = 0
    DRIVER_GROUP = 1
    CONNECTOR = 2
    SITE_DEFAULT = 3


@dataclass(frozen=True, slots=True)
class TariffCandidate:
    tariff: Tariff
    source: TariffSource


def select_tariff(
    candidates: Iterable[TariffCandidate], at: datetime, *, ad_hoc: bool
) -> Tariff | None:
    """The tariff for a session starting at ``at`` (aware), or None when none is eligible."""
    wanted = TariffType.AD_HOC_PAYMENT if ad_hoc else TariffType.REGULAR
    best: tuple[int, int, int] | None = None
    chosen: Tariff | None = None
    for position, candidate in enumerate(candidates):
        tariff = candidate.tariff
        if tariff.type not in (wanted, None) or not tariff.is_valid_at(at):
            continue
        rank = (int(candidate.source), 0 if tariff.type is wanted else 1, position)
        if best is None or rank < best:
            best, chosen = rank, tariff
    return chosen
