"""What the driver reads before starting: structured items, VAT included, en and de."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tariff_cases import BERLIN, MONDAY, example, local, tariff

from plugpay.domain.tariff import DisplayItem, display_tariff


def rows(items: tuple[DisplayItem, ...]) -> list[tuple[str, str, str]]:
    return [(i.label, i.amount, i.note) for i in items]


def test_items_come_per_kwh_per_minute_per_session_then_idle_fee() -> None:
    d = display_tariff(
        example("tariff_10_025kwh_parking_start.json"), tz=BERLIN, example_start=local(MONDAY, 10)
    )
    assert [i.kind for i in d.items] == ["ENERGY", "FLAT", "PARKING_TIME"]
    assert rows(d.items) == [
        ("Energy", "€0.275 / kWh", "incl. 10% VAT"),
        ("Session fee", "€0.60", "incl. 20% VAT"),
        ("Idle fee", "€0.04 / min", "billed per 15 min · incl. 20% VAT"),
    ]
    assert d.example == "about €6.10 for 20 kWh in 40 minutes"


def test_german_texts_and_number_format() -> None:
    d = display_tariff(
        example("tariff_10_025kwh_parking_start.json"),
        locale="de",
        tz=BERLIN,
        example_start=local(MONDAY, 10),
    )
    assert rows(d.items)[0] == ("Energie", "0,275\xa0€ / kWh", "inkl. 10\xa0% MwSt.")
    assert rows(d.items)[2][0] == "Blockiergebühr"
    assert d.example == "etwa 6,10\xa0€ für 20 kWh in 40 Minuten"


def test_restrictions_are_summarised() -> None:
    d = display_tariff(example("tariff_4_complex.json"), tz=BERLIN, example_start=local(MONDAY, 10))
    notes = [i.note for i in d.items]
    assert notes[1].startswith("Mon\u2013Fri · 32 A or more · billed per 10 min")
    assert notes[2].startswith("Sat, Sun · 32 A or more")
    assert notes[4].startswith("Mon\u2013Fri · 09:00\u201318:00")
    d = display_tariff(
        example("tariff_7_first_hour_kwh_free.json"), tz=BERLIN, example_start=local(MONDAY, 10)
    )
    assert rows(d.items) == [
        ("Energy", "free", "up to 1 kWh"),
        ("Energy", "€0.20 / kWh", "from 1 kWh"),
        ("Idle fee", "free", "first 60 min"),
        ("Idle fee", "€2.00 / h", "from 60 to 180 min"),
        ("Idle fee", "€0.05 / min", "after 180 min"),
    ]


def test_time_of_use_example_uses_the_rate_at_the_start() -> None:
    t = example("tariff_14_step_size.json")
    morning = display_tariff(t, tz=BERLIN, example_start=local(MONDAY, 10))
    evening = display_tariff(t, tz=BERLIN, example_start=local(MONDAY, 20))
    assert morning.example == "about €1.20 for 20 kWh in 40 minutes"
    assert evening.example == "about €1.80 for 20 kWh in 40 minutes"


def test_example_may_assume_the_connector_current() -> None:
    t = example("tariff_4_complex.json")
    plain = display_tariff(t, tz=BERLIN, example_start=local(MONDAY, 10))
    rated = display_tariff(
        t, tz=BERLIN, example_start=local(MONDAY, 10), example_current_a=Decimal(16)
    )
    assert (plain.example, rated.example) == (
        "about €2.88 for 20 kWh in 40 minutes",
        "about €3.78 for 20 kWh in 40 minutes",
    )


def test_min_and_max_price_and_alt_text() -> None:
    d = display_tariff(
        example("tariff_6_025kwh_start_max_price.json"), tz=BERLIN, example_start=local(MONDAY, 10)
    )
    assert rows(d.items)[-1] == ("Maximum price", "€11.00", "per session")
    alt = display_tariff(
        example("tariff_2_alt_text.json"), locale="de", tz=BERLIN, example_start=local(MONDAY, 10)
    )
    assert alt.alt_text == "2.00 euro p/hour including VAT."  # no German text: English


def test_yen_prices_have_no_decimals_and_hourly_prices_stay_hourly() -> None:
    t = tariff(
        [{"price_components": [{"type": "TIME", "price": 200, "vat": 10, "step_size": 60}]}],
        currency="JPY",
    )
    d = display_tariff(t, locale="en", tz="Asia/Tokyo", example_start=datetime(2024, 1, 8, 10))
    assert rows(d.items) == [("Charging time", "¥220 / h", "incl. 10% VAT")]
    assert d.example == "about ¥147 for 20 kWh in 40 minutes"


def test_an_unrestricted_price_after_time_windows_says_at_other_times() -> None:
    t = tariff(
        [
            {
                "price_components": [{"type": "ENERGY", "price": 0.50, "vat": 19, "step_size": 1}],
                "restrictions": {"start_time": "17:00", "end_time": "21:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 19, "step_size": 1}]},
            {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 19, "step_size": 0}]},
        ]
    )
    en = display_tariff(t, locale="en", tz=BERLIN, example_start=local(MONDAY, 10))
    de = display_tariff(t, locale="de", tz=BERLIN, example_start=local(MONDAY, 10))
    assert [i.note.split(" · ")[0] for i in en.items] == [
        "17:00\u201321:00",
        "at other times",
        "incl. 19% VAT",
    ]
    assert de.items[1].note.startswith("zu anderen Zeiten")
