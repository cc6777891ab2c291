"""A signed-in driver's charges: the list, monthly totals, and the CSV export.

Months are the charger's local months (a charge at 00:30 on 1 March in Berlin
is March's), totals are per currency, and only what was paid counts: the
captured amount less any refund.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plugpay.domain.money import Money
from plugpay.services.ports.ledger import LedgerQueries
from plugpay.services.ports.sessions import SessionRecord, SessionStore

CSV_COLUMNS = (
    "receipt_no",
    "session_id",
    "started_local",
    "ended_local",
    "time_zone",
    "charger_id",
    "connector_id",
    "energy_kwh",
    "amount",
    "currency",
    "state",
)
# A spreadsheet runs a cell that begins with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class MonthTotal:
    month: str  # "2026-12", in the chargers' time zones
    currency: str
    charges: int
    energy_wh: int
    paid_minor: int


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def began(session: SessionRecord) -> datetime:
    return session.started_at or session.created_at


def local_month(session: SessionRecord) -> str:
    return began(session).astimezone(_zone(session.time_zone)).strftime("%Y-%m")


def paid_minor(session: SessionRecord, refunded: int = 0) -> int:
    return max(0, (session.captured_minor or 0) - refunded)


def monthly_totals(
    sessions: Iterable[SessionRecord], refunded: dict[str, int] | None = None
) -> list[MonthTotal]:
    """Newest month first; charges that were paid (or are still being settled)."""
    refunded = refunded or {}
    totals: dict[tuple[str, str], MonthTotal] = {}
    for s in sessions:
        if s.captured_minor is None:
            continue
        key = (local_month(s), s.currency)
        was = totals.get(key, MonthTotal(key[0], s.currency, 0, 0, 0))
        totals[key] = MonthTotal(
            was.month,
            was.currency,
            was.charges + 1,
            was.energy_wh + s.energy_wh,
            was.paid_minor + paid_minor(s, refunded.get(s.id, 0)),
        )
    return sorted(totals.values(), key=lambda t: (t.month, t.currency), reverse=True)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _local_iso(at: datetime | None, zone: str) -> str:
    return at.astimezone(_zone(zone)).isoformat(timespec="seconds") if at else ""


def csv_text(sessions: Sequence[SessionRecord], refunded: dict[str, int] | None = None) -> str:
    """One row per charge, oldest first: machine-readable figures (a point as the
    decimal mark, amounts in the currency's major unit, times ISO 8601 with offset)."""
    refunded = refunded or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in sorted(sessions, key=lambda s: began(s).astimezone(UTC)):
        amount = (
            Money(paid_minor(s, refunded.get(s.id, 0)), s.currency).to_decimal()
            if s.captured_minor is not None
            else ""
        )
        writer.writerow(
            [
                _cell(f"{s.receipt_no:06d}" if s.receipt_no else ""),
                s.id,  # [A-Za-z0-9_-] only: nothing a spreadsheet runs
                _cell(_local_iso(began(s), s.time_zone)),
                _cell(_local_iso(s.stopped_at, s.time_zone)),
                _cell(s.time_zone),
                _cell(s.charger_id),
                _cell(s.connector_id),
                _cell((Decimal(s.energy_wh) / 1000).quantize(Decimal("0.001"))),
                _cell(amount),
                _cell(s.currency),
                _cell(s.state),
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class History:
    sessions: list[SessionRecord]  # newest first
    months: list[MonthTotal]
    refunded: dict[str, int]


class HistoryService:
    """The account's charges from any device (``LIMIT`` of them, newest first)."""

    LIMIT = 1000

    def __init__(self, sessions: SessionStore, ledger: LedgerQueries) -> None:
        self.sessions = sessions
        self.ledger = ledger

    async def of_account(self, account_id: int) -> History:
        records = await self.sessions.of_owner((), account_id, self.LIMIT)
        refunded = await self.ledger.refunded_of_sessions([r.id for r in records])
        return History(records, monthly_totals(records, refunded), refunded)

    async def csv(self, account_id: int) -> str:
        history = await self.of_account(account_id)
        return csv_text(history.sessions, history.refunded)
