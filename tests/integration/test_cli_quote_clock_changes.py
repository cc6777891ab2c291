"""`plugpay tariff quote` across the 2026 clock changes in Berlin, against a real SQLite file.

On 29 March 02:00 CET becomes 03:00 CEST; on 25 October 03:00 CEST becomes
02:00 CET. The command runs in this process (as `main(argv)`) to stay quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from plugpay.cli import main

TIME_AND_PARKING = {
    "id": "HOURLY",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "TIME", "price": 1.00, "step_size": 0},
                {"type": "PARKING_TIME", "price": 6.00, "step_size": 0},
            ]
        }
    ],
}


# The command's exit status, stdout and stderr.
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def plugpay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    monkeypatch.setenv("PLUGPAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("PLUGPAY_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.chdir(tmp_path)
    tariff = tmp_path / "hourly.json"
    tariff.write_text(json.dumps(TIME_AND_PARKING))

    def run(*args: str) -> tuple[int, str, str]:
        status = main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err

    assert run("tariff", "import", str(tariff))[0] == 0
    return run


def quote_json(run: Run, *args: str) -> dict[str, Any]:
    status, out, err = run(
        "tariff", "quote", "HOURLY", *args, "--time-zone", "Europe/Berlin", "--json"
    )
    assert status == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def lines(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (line["dimension"], line["quantity"], line["amount_excl_vat"]) for line in document["lines"]
    ]


@pytest.mark.parametrize("start", ["2026-10-25T01:30", "2026-03-29T01:30"])
def test_minutes_across_a_clock_change_are_billed_as_elapsed(plugpay: Run, start: str) -> None:
    document = quote_json(
        plugpay, "--kwh", "10", "--minutes", "120", "--parking-minutes", "30", "--start", start
    )
    assert lines(document) == [("TIME", "120.00", "2.00"), ("PARKING_TIME", "30.00", "3.00")]
    assert document["total_excl_vat"] == "5.00"


@pytest.mark.parametrize("start", ["2026-10-25T01:30", "2026-03-29T01:30"])
def test_periods_across_a_clock_change_are_billed_as_elapsed(
    plugpay: Run, tmp_path: Path, start: str
) -> None:
    periods = tmp_path / "periods.json"
    periods.write_text(
        json.dumps(
            [
                {"minutes": 50, "kwh": 5, "power_kw": 6},
                {"minutes": 70, "kwh": 7},
                {"minutes": 30, "kwh": 0, "charging": False},
            ]
        )
    )
    document = quote_json(plugpay, "--periods", str(periods), "--start", start)
    assert lines(document) == [("TIME", "120.00", "2.00"), ("PARKING_TIME", "30.00", "3.00")]


def test_a_start_the_clock_shows_twice_is_the_first_and_says_so(plugpay: Run) -> None:
    status, out, err = plugpay(
        "tariff",
        "quote",
        "HOURLY",
        "--kwh",
        "1",
        "--minutes",
        "60",
        "--start",
        "2026-10-25T02:30",
        "--time-zone",
        "Europe/Berlin",
        "--json",
    )
    assert status == 0
    assert err == (
        "note: 2026-10-25T02:30 happens twice in Europe/Berlin: quoting from the first, "
        "2026-10-25T02:30:00+02:00 (for the second, give --start 2026-10-25T02:30:00+01:00)\n"
    )
    assert lines(json.loads(out)) == [("TIME", "60.00", "1.00")]
    second = quote_json(
        plugpay, "--kwh", "1", "--minutes", "60", "--start", "2026-10-25T02:30+01:00"
    )
    assert lines(second) == [("TIME", "60.00", "1.00")]


def test_a_start_the_clock_skips_moves_forward_and_says_so(plugpay: Run) -> None:
    status, out, err = plugpay(
        "tariff",
        "quote",
        "HOURLY",
        "--kwh",
        "1",
        "--minutes",
        "20",
        "--start",
        "2026-03-29T02:30",
        "--time-zone",
        "Europe/Berlin",
        "--json",
    )
    assert status == 0, err
    assert err == (
        "note: 2026-03-29T02:30 does not exist in Europe/Berlin (the clock skips it): "
        "quoting from 2026-03-29T03:30:00+02:00\n"
    )
    assert lines(json.loads(out)) == [("TIME", "20.00", "0.33")]


def test_the_help_says_how_local_times_are_read(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["tariff", "quote", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Minutes are elapsed time" in text
    assert "the clock shows twice (autumn) means the first one" in text
    assert "one it skips (spring) moves forward by the gap" in text
