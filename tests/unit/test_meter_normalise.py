"""Meter values as chargers send them, normalised once to integer Wh / W / mA."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plugpay.domain.metering import FLAG_BACKWARDS, FLAG_JUMP, register_flag
from plugpay.ocpp.meter import normalise, parse_timestamp

AT = "2025-03-01T10:00:00Z"
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def one(*sampled: dict[str, Any], timestamp: str = AT) -> Any:
    readout = normalise([{"timestamp": timestamp, "sampledValue": list(sampled)}])
    assert len(readout.samples) == 1, readout
    return readout.samples[0]


def test_a_bare_value_is_an_energy_register_in_wh() -> None:
    # OCPP 1.6 §4.7: a value without any other field is active import energy in Wh.
    sample = one({"value": "1234"})
    assert (sample.energy_wh, sample.power_w, sample.at) == (1234, None, T0)


@pytest.mark.parametrize(
    ("sampled", "wh"),
    [
        ({"value": "12.345", "unit": "kWh"}, 12345),
        ({"value": "12.3456", "unit": "kWh"}, 12346),  # rounded half up, once
        ({"value": "0.0005", "unit": "kWh"}, 1),
        ({"value": " 42 ", "unit": "Wh"}, 42),
        ({"value": "7", "unit": "kwh"}, 7000),  # units are spelled freely
        ({"value": 12.5, "unitOfMeasure": {"unit": "kWh"}}, 12500),  # 2.0.1 numbers
        ({"value": 12345, "unitOfMeasure": {"unit": "Wh", "multiplier": 3}}, 12345000),
        ({"value": 12345, "unitOfMeasure": {"unit": "kWh", "multiplier": -3}}, 12345),
        ({"value": 5}, 5),  # 2.0.1 default unit is Wh
        ({"value": 5, "unitOfMeasure": {}}, 5),
        ({"value": "1e3", "unit": "Wh"}, 1000),
    ],
)
def test_energy_in_any_unit_becomes_integer_wh(sampled: dict[str, Any], wh: int) -> None:
    assert one({**sampled, "measurand": "Energy.Active.Import.Register"}).energy_wh == wh


def test_power_current_and_soc_are_read_beside_energy() -> None:
    sample = one(
        {"value": "20.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
        {"value": "11", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "16.2", "measurand": "Current.Import", "unit": "A"},
        {"value": "55", "measurand": "SoC", "unit": "Percent", "location": "EV"},
        {"value": "230", "measurand": "Voltage", "unit": "V"},  # not used
    )
    assert (sample.energy_wh, sample.power_w, sample.current_ma, sample.soc) == (
        20500,
        11000,
        16200,
        55,
    )


def test_per_phase_values_add_up_and_current_takes_the_highest_phase() -> None:
    sample = one(
        {"value": "1000", "phase": "L1"},
        {"value": "1100", "phase": "L2"},
        {"value": "1200", "phase": "L3"},
        {"value": "3.6", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L1-N"},
        {"value": "3.7", "measurand": "Power.Active.Import", "unit": "kW", "phase": "L2-N"},
        {"value": "16", "measurand": "Current.Import", "phase": "L1"},
        {"value": "15", "measurand": "Current.Import", "phase": "L2"},
        {"value": "0.5", "measurand": "Current.Import", "phase": "N"},  # neutral: not a line
    )
    assert (sample.energy_wh, sample.power_w, sample.current_ma) == (3300, 7300, 16000)


def test_a_total_wins_over_phases_and_the_outlet_over_the_inlet() -> None:
    sample = one(
        {"value": "900", "location": "Inlet"},
        {"value": "100", "phase": "L1"},
        {"value": "350"},
    )
    assert sample.energy_wh == 350
    assert one({"value": "900", "location": "Inlet"}).energy_wh == 900  # nothing else


def test_signed_data_is_skipped() -> None:
    sample = one(
        {"value": "3031323334", "format": "SignedData", "context": "Transaction.End"},
        {"value": "1234", "context": "Transaction.End"},
    )
    assert sample.energy_wh == 1234 and sample.context == "Transaction.End"
    assert (
        normalise(
            [{"timestamp": AT, "sampledValue": [{"value": "AB", "format": "SignedData"}]}]
        ).samples
        == []
    )


def test_entries_of_one_instant_are_one_sample_oldest_first() -> None:
    readout = normalise(
        [
            {"timestamp": "2025-03-01T10:05:00Z", "sampledValue": [{"value": "2000"}]},
            {"timestamp": AT, "sampledValue": [{"value": "1000"}]},
            {
                "timestamp": "2025-03-01T11:00:00+01:00",  # the same instant as AT
                "sampledValue": [{"value": "7", "measurand": "Power.Active.Import"}],
            },
        ]
    )
    assert [(s.at, s.energy_wh, s.power_w) for s in readout.samples] == [
        (T0, 1000, 7),
        (T0 + timedelta(minutes=5), 2000, None),
    ]


@pytest.mark.parametrize(
    "sampled",
    [
        {"value": "abc"},
        {"value": "NaN"},
        {"value": "Infinity"},
        {"value": "1e999999"},
        {"value": str(10**13)},
        {"value": "5", "unit": "kvarh"},
        {"value": 5, "unitOfMeasure": {"unit": "Wh", "multiplier": 10**9}},
        {"value": "101", "measurand": "SoC"},
    ],
)
def test_unreadable_values_are_left_out_and_described(sampled: dict[str, Any]) -> None:
    readout = normalise(
        [
            {
                "timestamp": AT,
                "sampledValue": [sampled, {"value": "5", "measurand": "Power.Active.Import"}],
            }
        ]
    )
    [sample] = readout.samples
    assert sample.energy_wh is None and sample.soc is None and sample.power_w == 5
    [problem] = readout.problems
    assert problem.startswith(AT)


def test_timestamps_become_aware_utc() -> None:
    assert parse_timestamp("2025-03-01T11:00:00+01:00") == T0
    assert parse_timestamp("2025-03-01T10:00:00") == T0  # naive means UTC
    assert parse_timestamp("2025-03-01T10:00:00.123456789Z").tzinfo is UTC


def test_a_register_going_backwards_or_jumping_is_flagged() -> None:
    assert register_flag(1000, T0, 1000, T0 + timedelta(minutes=1)) == ""
    assert register_flag(1000, T0, 999, T0 + timedelta(minutes=1)) == FLAG_BACKWARDS
    # 1 minute at the most plausible power (1.5 MW) is 25 kWh (+1 kWh tolerance).
    assert register_flag(0, T0, 26_000, T0 + timedelta(minutes=1)) == ""
    assert register_flag(0, T0, 26_001, T0 + timedelta(minutes=1)) == FLAG_JUMP
    assert register_flag(None, None, 5, T0) == ""
