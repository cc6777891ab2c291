"""OCPI Tariff JSON in and out: every example parses and round-trips; bad tariffs
are refused with a message that names the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tariff_cases import example_json, example_paths

from plugpay.domain.errors import InvalidInput
from plugpay.domain.tariff import (
    DayOfWeek,
    Dimension,
    TariffError,
    parse_tariff,
    tariff_to_json,
    tariff_to_ocpi,
)


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_every_spec_example_parses_and_round_trips(path: Path) -> None:
    raw = path.read_bytes()
    tariff = parse_tariff(raw)
    as_dict = tariff_to_ocpi(tariff)
    assert as_dict == json.loads(raw, parse_float=Decimal)
    assert parse_tariff(as_dict) == tariff
    assert parse_tariff(tariff_to_json(tariff)) == tariff
    assert parse_tariff(raw.decode()) == tariff


def test_there_are_21_examples() -> None:
    assert len(example_paths()) == 21


def test_parsed_values_are_exact_decimals_and_typed() -> None:
    tariff = parse_tariff(json.dumps(example_json_plain("tariff_4_complex.json")))
    component = tariff.elements[0].price_components[0]
    assert component.type is Dimension.FLAT
    assert component.price == Decimal("2.50")
    assert component.vat == Decimal("15.0")
    restrictions = tariff.elements[4].restrictions
    assert restrictions is not None
    assert restrictions.start_time == time(9, 0)
    assert restrictions.day_of_week[0] is DayOfWeek.MONDAY
    assert tariff.last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)


def test_floats_in_a_decoded_dict_become_their_shortest_decimal() -> None:
    data = example_json_plain("tariff_8_simple_025kwh.json")
    data["elements"][0]["price_components"][0]["price"] = 0.1
    assert parse_tariff(data).elements[0].price_components[0].price == Decimal("0.1")


def test_timestamps_without_designator_are_utc_and_fractions_survive() -> None:
    data = example_json_plain("tariff_8_simple_025kwh.json")
    data["last_updated"] = "2016-12-29T17:45:09.2"
    tariff = parse_tariff(data)
    assert tariff.last_updated == datetime(2016, 12, 29, 17, 45, 9, 200000, tzinfo=UTC)
    assert tariff_to_ocpi(tariff)["last_updated"] == "2016-12-29T17:45:09.2Z"


def test_explicit_nulls_are_absent_fields() -> None:
    data = example_json_plain("tariff_8_simple_025kwh.json")
    data.update(type=None, min_price=None, tariff_alt_text=None)
    data["elements"][0]["restrictions"] = None
    assert parse_tariff(data) == parse_tariff(example_json_plain("tariff_8_simple_025kwh.json"))


def test_tariff_error_is_invalid_input_with_the_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_tariff(mutated(lambda d: d["elements"][0]["price_components"][0].update(price=-1)))
    assert isinstance(caught.value, TariffError)
    assert caught.value.path == "elements[0].price_components[0].price"


def example_json_plain(name: str) -> dict[str, Any]:
    return json.loads(json.dumps(example_json(name), default=str))


BASE = "tariff_10_025kwh_parking_start.json"  # FLAT, ENERGY, PARKING_TIME


def mutated(change: Any, name: str = BASE) -> dict[str, Any]:
    data = copy.deepcopy(example_json(name))
    change(data)
    return data


def _restrict(**restrictions: Any) -> Any:
    def change(d: dict[str, Any]) -> None:
        d["elements"][0]["restrictions"] = restrictions

    return change


def _component(index: int, **values: Any) -> Any:
    def change(d: dict[str, Any]) -> None:
        d["elements"][0]["price_components"][index].update(values)

    return change


BAD_TARIFFS = [
    (_component(0, price=-0.5), "elements[0].price_components[0].price: must be >= 0"),
    (_component(1, price="cheap"), "elements[0].price_components[1].price: must be a number"),
    (_component(1, vat=-1), "elements[0].price_components[1].vat: must be >= 0"),
    (_component(2, step_size=-900), "elements[0].price_components[2].step_size: must be >= 0"),
    (_component(2, step_size=1.5), "elements[0].price_components[2].step_size: must be an integer"),
    (_component(1, type="KWH"), "elements[0].price_components[1].type: must be one of"),
    (_component(1, type="FLAT"), "elements[0].price_components[1].type: FLAT appears twice"),
    (_component(1, cost=1), "elements[0].price_components[1].cost: unknown field"),
    (lambda d: d["elements"][0]["price_components"][0].pop("step_size"), "step_size: is required"),
    (lambda d: d.update(currency="EUX"), "currency: unknown ISO 4217 currency 'EUX'"),
    (lambda d: d.update(currency="eur"), "currency: unknown ISO 4217 currency 'eur'"),
    (lambda d: d.update(currency="EURO"), "currency: must be 3 characters long"),
    (lambda d: d.pop("currency"), "currency: is required"),
    (lambda d: d.pop("id"), "id: is required"),
    (lambda d: d.update(id="x" * 37), "id: must be 1 to 36 characters long"),
    (lambda d: d.update(elements=[]), "elements: must contain at least one tariff element"),
    (
        lambda d: d["elements"][0].update(price_components=[]),
        "elements[0].price_components: must contain at least one price component",
    ),
    (lambda d: d.update(prices=[]), "prices: unknown field"),
    (lambda d: d.update(country_code="DEU"), "country_code: must be 2 characters long"),
    (lambda d: d.update(last_updated="yesterday"), "last_updated: must be an RFC 3339"),
    (lambda d: d.update(last_updated="2018-02-30T10:00:00Z"), "last_updated: no such timestamp"),
    (lambda d: d.update(tariff_alt_url="ftp://x"), "tariff_alt_url: must be an http(s) URL"),
    (
        lambda d: d.update(min_price={"excl_vat": 2, "incl_vat": 1}),
        "min_price.incl_vat: must be >= excl_vat",
    ),
    (
        lambda d: d.update(min_price={"excl_vat": 20}, max_price={"excl_vat": 10}),
        "min_price.excl_vat: must not exceed max_price.excl_vat",
    ),
    (
        lambda d: d.update(
            start_date_time="2020-01-02T00:00:00Z", end_date_time="2020-01-01T00:00:00Z"
        ),
        "start_date_time: must be before end_date_time",
    ),
    (_restrict(start_time="7:00"), "elements[0].restrictions.start_time: must be a time of day"),
    (_restrict(end_time="24:00"), "elements[0].restrictions.end_time: must be a time of day"),
    (_restrict(start_time="10:00", end_time="10:00"), "restrictions.end_time: equals start_time"),
    (_restrict(start_date="2024-13-01"), "elements[0].restrictions.start_date: must be a date"),
    (_restrict(end_date="2023-02-29"), "elements[0].restrictions.end_date: no such date"),
    (
        _restrict(start_date="2024-05-01", end_date="2024-04-01"),
        "elements[0].restrictions.start_date: must be before end_date",
    ),
    (_restrict(min_kwh=50, max_kwh=20), "elements[0].restrictions.min_kwh: must be less than"),
    (_restrict(min_kwh=20, max_kwh=20), "elements[0].restrictions.min_kwh: must be less than"),
    (_restrict(min_power=22, max_power=11), "restrictions.min_power: must be less than"),
    (_restrict(min_current=32, max_current=16), "restrictions.min_current: must be less than"),
    (_restrict(min_duration=3600, max_duration=60), "restrictions.min_duration: must be less"),
    (_restrict(max_kwh=-1), "elements[0].restrictions.max_kwh: must be >= 0"),
    (_restrict(max_duration=1.5), "elements[0].restrictions.max_duration: must be an integer"),
    (_restrict(day_of_week=["MONDAY", "FUNDAY"]), "restrictions.day_of_week[1]: must be one of"),
    (_restrict(day_of_week="MONDAY"), "elements[0].restrictions.day_of_week: must be a list"),
    (_restrict(day_of_week=["MONDAY", "MONDAY"]), "day_of_week: lists a day more than once"),
    (_restrict(reservation="MAYBE"), "elements[0].restrictions.reservation: must be one of"),
    (
        _restrict(reservation="RESERVATION"),
        "elements[0].price_components[1].type: a reservation element may only price FLAT and TIME",
    ),
    (_restrict(max_kwhs=10), "elements[0].restrictions.max_kwhs: unknown field"),
    (
        lambda d: d["elements"].append(copy.deepcopy(d["elements"][0])),
        "elements[1].price_components[0]: FLAT can never apply: elements[0] prices FLAT",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_TARIFFS, ids=[m for _, m in BAD_TARIFFS])
def test_bad_tariffs_are_refused_naming_the_field(change: Any, message: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(mutated(change))
    assert message in str(caught.value)


def test_a_restricted_element_after_an_unrestricted_one_for_the_same_dimension_is_refused() -> None:
    data = {
        "id": "x",
        "currency": "EUR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]},
            {
                "price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}],
                "restrictions": {"start_time": "22:00", "end_time": "06:00"},
            },
        ],
    }
    with pytest.raises(
        TariffError, match=r"elements\[1\]\.price_components\[0\]: ENERGY can never"
    ):
        parse_tariff(data)
    data["elements"].reverse()
    assert parse_tariff(data).elements[0].restrictions is not None


def test_a_narrower_weekday_set_is_shadowed_by_a_wider_one() -> None:
    def element(days: list[str]) -> dict[str, Any]:
        return {
            "price_components": [{"type": "TIME", "price": 1, "step_size": 60}],
            "restrictions": {"day_of_week": days},
        }

    data = {"id": "x", "currency": "EUR", "elements": [element(["MONDAY", "TUESDAY"])]}
    data["elements"].append(element(["TUESDAY"]))
    with pytest.raises(TariffError, match="TIME can never apply"):
        parse_tariff(data)
    data["elements"][1] = element(["TUESDAY", "WEDNESDAY"])
    parse_tariff(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        ("[]", "tariff: must be an object"),
        ('{"id": "x", "currency": "EUR", "elements": {}}', "elements: must be a list"),
    ],
)
def test_malformed_documents_are_refused(data: bytes | str, message: str) -> None:
    with pytest.raises(TariffError, match=message):
        parse_tariff(data)
