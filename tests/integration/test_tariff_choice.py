"""Which tariff applies where and to whom, and that a new version never changes a running price."""

from __future__ import annotations

import json
from decimal import Decimal

from support.driver import EXAMPLES, PASSWORD
from support.server import RunningServer


def variant(name: str, new_id: str, energy_price: float | None = None, **changes: object) -> bytes:
    data = json.loads((EXAMPLES / name).read_text())
    data["id"] = new_id
    if energy_price is not None:
        data["elements"][0]["price_components"][0]["price"] = energy_price
    data.update(changes)
    return json.dumps(data).encode()


async def test_most_specific_assignment_and_audience_win(server: RunningServer) -> None:
    services = server.runtime.services
    tariffs = services.tariffs
    await services.chargers.add_charger("CP-T", PASSWORD, connectors=2, site="Depot")
    site_id = await server.runtime.tariff_store.site_id("Depot")
    await tariffs.import_tariff(variant("simple-per-kwh.json", "SITE", 0.30))
    await tariffs.import_tariff(variant("simple-per-kwh.json", "CHARGER", 0.35))
    await tariffs.import_tariff(variant("simple-per-kwh.json", "CONNECTOR2", 0.40))
    await tariffs.import_tariff(variant("simple-per-kwh.json", "GOLD", 0.20, type="REGULAR"))
    await tariffs.assign("SITE", site_id=site_id)
    place1 = await server.runtime.tariff_store.place("CP-T", 1)
    place2 = await server.runtime.tariff_store.place("CP-T", 2)
    assert place1 is not None and place2 is not None

    assert (await tariffs.applicable(place1))[1].id == "SITE"
    await tariffs.assign("CHARGER", charger_id="CP-T")
    assert (await tariffs.applicable(place1))[1].id == "CHARGER"
    await tariffs.assign("CONNECTOR2", charger_id="CP-T", connector_id=2)
    assert (await tariffs.applicable(place1))[1].id == "CHARGER"
    assert (await tariffs.applicable(place2))[1].id == "CONNECTOR2"
    await tariffs.assign("GOLD", site_id=site_id, audience="member:gold")
    # A member price needs a member (and a REGULAR tariff is not for ad-hoc payment).
    assert (await tariffs.applicable(place1, ("guest",)))[1].id == "CHARGER"
    assert (await tariffs.applicable(place1, ("member:gold",), ad_hoc=False))[1].id == "GOLD"


async def test_a_new_version_applies_to_new_sessions_only(server: RunningServer) -> None:
    services = server.runtime.services
    await services.tariffs.import_tariff(variant("simple-per-kwh.json", "KWH", 0.40))
    await services.chargers.add_charger("CP-V", PASSWORD, connectors=2, site="V")
    await services.tariffs.assign("KWH", charger_id="CP-V")
    place = await server.runtime.tariff_store.place("CP-V", 1)
    assert place is not None
    # A session stores the exact version (pk) it started with.
    started_with, _ = await services.tariffs.applicable(place)
    await services.tariffs.import_tariff(variant("simple-per-kwh.json", "KWH", 0.55))
    new_sessions_get, newest = await services.tariffs.applicable(place)
    assert (started_with.version, new_sessions_get.version) == (1, 2)
    assert newest.elements[0].price_components[0].price == Decimal("0.55")
    kept, kept_tariff = await services.tariffs.version(started_with.pk)
    assert kept.version == 1
    assert kept_tariff.elements[0].price_components[0].price == Decimal("0.40")
