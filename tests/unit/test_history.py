"""Monthly totals and the CSV export of a driver's charges (services/history.py)."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime

from plugpay.services.history import CSV_COLUMNS, csv_text, monthly_totals
from plugpay.services.ports.sessions import SessionRecord

BASE = SessionRecord(
    id="s1", charger_id="CP-1", connector_id=1, state="SETTLED", owner_hash="0" * 64,
    lang="en", tariff_pk=1, time_zone="Europe/Berlin", currency="EUR", hold_minor=5000,
    id_tag="t", payment_provider="demo", payment_ref=None, card_brand=None, card_last4=None,
    transaction_pk=None, energy_wh=10_000, cost_minor=500, power_w=None, captured_minor=500,
    breakdown=None, reason=None, reason_detail=None, deadline_at=None,
    created_at=datetime(2026, 3, 31, 21, 30, tzinfo=UTC), authorized_at=None,
    start_deadline=None, started_at=datetime(2026, 3, 31, 22, 30, tzinfo=UTC),
    last_reading_at=None, stop_asked_at=None, stopped_at=None, settled_at=None,
    receipt_pushed_at=None, version=1,
)  # fmt: skip


def test_months_are_the_chargers_local_months_per_currency_less_refunds() -> None:
    berlin_april = BASE  # 22:30 UTC on 31 March is 00:30 on 1 April in Berlin
    new_york_march = replace(BASE, id="s2", time_zone="America/New_York")  # 18:30 on 31 March
    chf = replace(BASE, id="s3", currency="CHF", captured_minor=800)
    unpaid = replace(BASE, id="s4", state="START_FAILED", captured_minor=None)
    totals = monthly_totals([berlin_april, new_york_march, chf, unpaid], refunded={"s1": 200})
    assert [(t.month, t.currency, t.charges, t.paid_minor) for t in totals] == [
        ("2026-04", "EUR", 1, 300),
        ("2026-04", "CHF", 1, 800),
        ("2026-03", "EUR", 1, 500),
    ]
    assert sum(t.energy_wh for t in totals) == 30_000


def test_csv_is_machine_readable_oldest_first_and_runs_no_formula() -> None:
    later = replace(BASE, id="s2", started_at=datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    sneaky = replace(BASE, id="s3", charger_id="=HYPERLINK(1)", receipt_no=42,
                     started_at=datetime(2026, 1, 1, 8, 0, tzinfo=UTC))  # fmt: skip
    rows = list(csv.reader(io.StringIO(csv_text([later, BASE, sneaky], {"s2": 500}))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[1] for r in rows[1:]] == ["s3", "s1", "s2"]
    assert rows[1][0] == "000042" and rows[1][5] == "'=HYPERLINK(1)"
    assert rows[2][2] == "2026-04-01T00:30:00+02:00" and rows[2][4] == "Europe/Berlin"
    assert rows[2][7] == "10.000" and rows[2][8] == "5.00"
    assert rows[3][8] == "0.00"  # refunded in full
