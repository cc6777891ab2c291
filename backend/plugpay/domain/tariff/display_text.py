"""Words for :mod:`.display`, in English and German, and restriction summaries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal

from babel.dates import format_date, get_day_names
from babel.numbers import format_decimal

from plugpay.domain.tariff.model import TariffRestrictions

# Ranges read "18:00\u201322:00" and "Mon\u2013Fri", with an en dash.
DASH = "\u2013"


@dataclass(frozen=True, slots=True)
class Texts:
    locale: str
    labels: dict[str, str]
    free: str
    minute: str
    hour: str
    per_session: str
    billed_per: str
    incl_vat: str
    example: str
    time_from: str
    time_until: str
    after_minutes: str
    first_minutes: str
    minutes_between: str
    kwh_from: str
    kwh_up_to: str
    below: str
    at_least: str
    date_from: str
    date_until: str
    otherwise: str


TEXTS = {
    "en": Texts(
        locale="en",
        labels={
            "ENERGY": "Energy",
            "TIME": "Charging time",
            "FLAT": "Session fee",
            "PARKING_TIME": "Idle fee",
            "MIN_PRICE": "Minimum price",
            "MAX_PRICE": "Maximum price",
        },
        free="free",
        minute="min",
        hour="h",
        per_session="per session",
        billed_per="billed per {unit}",
        incl_vat="incl. {rate} VAT",
        example="about {amount} for {kwh} kWh in {minutes} minutes",
        time_from="from {start}",
        time_until="until {end}",
        after_minutes="after {minutes} min",
        first_minutes="first {minutes} min",
        minutes_between="from {low} to {high} min",
        kwh_from="from {value} kWh",
        kwh_up_to="up to {value} kWh",
        below="below {value}",
        at_least="{value} or more",
        date_from="from {date}",
        date_until="until {date}",
        otherwise="at other times",
    ),
    "de": Texts(
        locale="de",
        labels={
            "ENERGY": "Energie",
            "TIME": "Ladezeit",
            "FLAT": "Startgebühr",
            "PARKING_TIME": "Blockiergebühr",
            "MIN_PRICE": "Mindestpreis",
            "MAX_PRICE": "Höchstpreis",
        },
        free="kostenlos",
        minute="Min.",
        hour="Std.",
        per_session="pro Ladevorgang",
        billed_per="Abrechnung je {unit}",
        incl_vat="inkl. {rate} MwSt.",
        example="etwa {amount} für {kwh} kWh in {minutes} Minuten",
        time_from="ab {start} Uhr",
        time_until="bis {end} Uhr",
        after_minutes="nach {minutes} Min.",
        first_minutes="die ersten {minutes} Min.",
        minutes_between="von {low} bis {high} Min.",
        kwh_from="ab {value} kWh",
        kwh_up_to="bis {value} kWh",
        below="unter {value}",
        at_least="ab {value}",
        date_from="ab {date}",
        date_until="bis {date}",
        otherwise="zu anderen Zeiten",
    ),
}


def restriction_notes(r: TariffRestrictions | None, texts: Texts) -> list[str]:
    """Short phrases for an element's restrictions, e.g. ["Mon-Fri", "18:00-22:00"] (en dash)."""
    if r is None:
        return []
    notes: list[str] = []
    if r.day_of_week:
        notes.append(_days(sorted(day.iso_index for day in r.day_of_week), texts.locale))
    if r.start_time is not None and r.end_time is not None:
        notes.append(f"{_hhmm(r.start_time)}{DASH}{_hhmm(r.end_time)}")
    elif r.start_time is not None:
        notes.append(texts.time_from.format(start=_hhmm(r.start_time)))
    elif r.end_time is not None:
        notes.append(texts.time_until.format(end=_hhmm(r.end_time)))
    if r.start_date is not None:
        notes.append(
            texts.date_from.format(date=format_date(r.start_date, "medium", locale=texts.locale))
        )
    if r.end_date is not None:  # exclusive in OCPI: show the last day it applies
        last = r.end_date - timedelta(days=1)
        notes.append(texts.date_until.format(date=format_date(last, "medium", locale=texts.locale)))
    notes.extend(_durations(r, texts))
    number = _number(texts.locale)
    if r.min_kwh is not None and r.max_kwh is not None:
        notes.append(f"{number(r.min_kwh)}{DASH}{number(r.max_kwh)} kWh")
    elif r.min_kwh is not None:
        notes.append(texts.kwh_from.format(value=number(r.min_kwh)))
    elif r.max_kwh is not None:
        notes.append(texts.kwh_up_to.format(value=number(r.max_kwh)))
    for low, high, unit in ((r.min_power, r.max_power, "kW"), (r.min_current, r.max_current, "A")):
        if low is not None and high is not None:
            notes.append(f"{number(low)}{DASH}{number(high)} {unit}")
        elif low is not None:
            notes.append(texts.at_least.format(value=f"{number(low)} {unit}"))
        elif high is not None:
            notes.append(texts.below.format(value=f"{number(high)} {unit}"))
    return notes


def _durations(r: TariffRestrictions, texts: Texts) -> list[str]:
    low = None if not r.min_duration else _minutes(r.min_duration, texts.locale)
    high = None if r.max_duration is None else _minutes(r.max_duration, texts.locale)
    if low is not None and high is not None:
        return [texts.minutes_between.format(low=low, high=high)]
    if low is not None:
        return [texts.after_minutes.format(minutes=low)]
    if high is not None:
        return [texts.first_minutes.format(minutes=high)]
    return []


def _minutes(seconds: int, locale: str) -> str:
    return format_decimal(Decimal(seconds) / 60, locale=locale)


def _number(locale: str) -> Callable[[Decimal], str]:
    def render(value: Decimal) -> str:
        return format_decimal(value, locale=locale)

    return render


def _hhmm(moment: time) -> str:
    return moment.strftime("%H:%M")


def _days(indices: list[int], locale: str) -> str:
    """Weekday names, with runs of three or more days as a range ("Mon-Fri, Sun")."""
    names = get_day_names("abbreviated", locale=locale)
    parts: list[str] = []
    run: list[int] = []
    for index in [*indices, -2]:
        if run and index == run[-1] + 1:
            run.append(index)
            continue
        if len(run) >= 3:
            parts.append(f"{names[run[0]]}{DASH}{names[run[-1]]}")
        else:
            parts.extend(names[i] for i in run)
        run = [index]
    return ", ".join(parts)
