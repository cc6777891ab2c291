"""Use cases for tariffs: import (a new version each time), choose, quote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from plugpay.domain.errors import InvalidInput, NotFound
from plugpay.domain.tariff import (
    PriceBreakdown,
    Tariff,
    parse_tariff,
    quote,
    quote_periods,
    tariff_to_json,
)
from plugpay.domain.tariff.select import TariffCandidate, TariffSource, select_tariff
from plugpay.services.ports import ConnectorPlace, StoredTariff, TariffStore

# Within one source, a connector's own tariff is listed before its charger's.
_SCOPE_ORDER = {"connector": 0, "charger": 1, "site": 2}


def _source(scope: str, audience: str) -> TariffSource:
    if audience.startswith("contract:"):
        return TariffSource.CONTRACT
    if audience.startswith("member:"):
        return TariffSource.DRIVER_GROUP
    return TariffSource.SITE_DEFAULT if scope == "site" else TariffSource.CONNECTOR


@dataclass
class TariffService:
    store: TariffStore

    async def import_tariff(self, data: bytes | str | dict[str, Any]) -> StoredTariff:
        """Validate an OCPI 2.2.1 Tariff and store it as a new version (never edited in place)."""
        tariff = parse_tariff(data)
        return await self.store.add_version(
            tariff.id, tariff.currency, tariff_to_json(tariff).decode()
        )

    async def get(self, tariff_id: str) -> tuple[StoredTariff, Tariff]:
        stored = await self.store.latest(tariff_id)
        if stored is None:
            raise NotFound(
                f"no tariff with id {tariff_id!r} (import it with: plugpay tariff import FILE)"
            )
        return stored, parse_tariff(stored.ocpi_json)

    async def version(self, pk: int) -> tuple[StoredTariff, Tariff]:
        stored = await self.store.by_pk(pk)
        if stored is None:
            raise NotFound(f"no tariff version {pk}")
        return stored, parse_tariff(stored.ocpi_json)

    async def assign(
        self,
        tariff_id: str,
        *,
        site_id: int | None = None,
        charger_id: str | None = None,
        connector_id: int | None = None,
        audience: str = "*",
    ) -> None:
        """Make ``tariff_id`` apply to a connector, a charger or a site (for an audience)."""
        await self.get(tariff_id)
        if site_id is None and charger_id is None:
            raise InvalidInput("assign a tariff to a site, a charger or a connector")
        if not (
            audience == "*" or audience == "guest" or audience.startswith(("member:", "contract:"))
        ):
            raise InvalidInput("audience is *, guest, member:<group> or contract:<id>")
        await self.store.assign(
            tariff_id,
            site_id=site_id,
            charger_id=charger_id,
            connector_id=connector_id,
            audience=audience,
        )

    async def place(self, charger_id: str, connector_id: int) -> ConnectorPlace | None:
        """Where a connector is (site, time zone, plug): what pages show around a price."""
        return await self.store.place(charger_id, connector_id)

    async def applicable(
        self,
        place: ConnectorPlace,
        audiences: tuple[str, ...] = ("guest",),
        *,
        ad_hoc: bool = True,
        at: datetime | None = None,
    ) -> tuple[StoredTariff, Tariff]:
        """The tariff a new session at ``place`` gets (precedence: domain/tariff/select.py).

        ``audiences`` are what the driver is: "guest", "member:<group>",
        "contract:<id>". Connector assignments come before charger-wide ones. A
        member's session takes a REGULAR tariff where one applies (OCPI's type for
        customers with an account), else the ad-hoc one.
        """
        assignments = await self.store.assignments_for(
            place.site_id, place.charger_id, place.connector_id
        )
        wanted = {*audiences, "*"}
        candidates: list[TariffCandidate] = []
        stored_by_tariff: dict[int, StoredTariff] = {}
        for scope, audience, tariff_id in sorted(assignments, key=lambda a: _SCOPE_ORDER[a[0]]):
            if audience not in wanted:
                continue
            stored, tariff = await self.get(tariff_id)
            stored_by_tariff[id(tariff)] = stored
            candidates.append(TariffCandidate(tariff, _source(scope, audience)))
        when = at or datetime.now(UTC)
        chosen = None
        if any(a.startswith(("member:", "contract:")) for a in audiences):
            # A member is a regular customer: within the most specific source that has
            # a tariff for them (their group's before the connector's), a REGULAR one
            # first, else the ad-hoc one.
            for source in sorted({c.source for c in candidates}):
                same = [c for c in candidates if c.source == source]
                chosen = select_tariff(same, when, ad_hoc=False) or select_tariff(
                    same, when, ad_hoc=True
                )
                if chosen is not None:
                    break
        else:
            chosen = select_tariff(candidates, when, ad_hoc=ad_hoc)
        if chosen is None:
            raise NotFound(
                f"no tariff applies to {place.charger_id} connector {place.connector_id}"
            )
        return stored_by_tariff[id(chosen)], chosen

    async def quote(
        self,
        tariff_id: str,
        *,
        kwh: Decimal,
        minutes: Decimal,
        parking_minutes: Decimal,
        start_local: datetime,
        time_zone: str,
    ) -> PriceBreakdown:
        _, tariff = await self.get(tariff_id)
        return quote(tariff, kwh, minutes, parking_minutes, start_local=start_local, tz=time_zone)

    async def quote_periods(
        self,
        tariff_id: str,
        periods: list[dict[str, Any]],
        *,
        start_local: datetime,
        time_zone: str,
    ) -> PriceBreakdown:
        _, tariff = await self.get(tariff_id)
        return quote_periods(tariff, periods, start_local=start_local, tz=time_zone)
