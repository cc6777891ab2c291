"""What a receipt shows, from the settled session and its transaction."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from plugpay.services.ports import SessionRecord, SessionStore, TariffStore
from plugpay.services.ports.ledger import LedgerQueries


def receipt_reference(session_id: str) -> str:
    """A short, stable receipt number that reveals nothing of the session id."""
    digest = hashlib.sha256(f"plugpay-receipt:{session_id}".encode()).hexdigest().upper()
    return f"{digest[:4]}-{digest[4:8]}-{digest[8:12]}"


@dataclass(frozen=True)
class Operator:
    """Who sells the charge, as every receipt names them."""

    name: str | None = None
    address: str | None = None  # lines separated by newlines or ";"
    vat_id: str | None = None

    @property
    def address_lines(self) -> list[str]:
        text = (self.address or "").replace(";", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class ReceiptDetails:
    site: str | None
    charger_id: str
    connector_id: int
    started_at: datetime | None  # site-local
    stopped_at: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    energy_wh: int
    lines: list[dict[str, Any]]
    total_excl_vat: str | None
    total_incl_vat: str | None
    currency: str
    paid_minor: int | None
    card: str | None
    final: bool
    # Refunds made (amount, reason, when, site-local), and their sum.
    refunds: list[tuple[int, str, datetime | None]]
    refunded_minor: int
    # Printed on the receipt: derived from, never part of, the session id
    # (which is the secret that opens the session).
    reference: str
    # The gapless number of a receipt for a captured payment ("000123"); None before
    # the capture, or for a charge that cost nothing.
    number: str | None
    operator: Operator
    time_zone: str


@dataclass
class ReceiptService:
    sessions: SessionStore
    tariffs: TariffStore
    ledger: LedgerQueries
    operator: Operator = Operator()

    async def details(self, record: SessionRecord) -> ReceiptDetails:
        place = await self.tariffs.place(record.charger_id, record.connector_id)
        info = (
            await self.sessions.transaction_info(record.transaction_pk)
            if record.transaction_pk
            else None
        )
        zone = ZoneInfo(record.time_zone)

        def local(at: datetime | None) -> datetime | None:
            return at.astimezone(zone) if at else None

        refunds = [
            (r.amount_minor, r.reason, local(r.done_at))
            for r in await self.ledger.refunds_of_session(record.id)
            if r.state == "succeeded"
        ]
        breakdown = record.breakdown or {}
        card = None
        if record.card_brand and record.card_last4:
            card = f"{record.card_brand.title()} •••• {record.card_last4}"
        return ReceiptDetails(
            site=place.site_name if place else None,
            charger_id=record.charger_id,
            connector_id=record.connector_id,
            started_at=local(info.started_at if info else record.started_at),
            stopped_at=local(info.stopped_at if info and info.stopped_at else record.stopped_at),
            meter_start_wh=info.meter_start_wh if info else None,
            meter_stop_wh=info.meter_stop_wh if info else None,
            energy_wh=record.energy_wh,
            lines=list(breakdown.get("lines", [])),
            total_excl_vat=breakdown.get("total_excl_vat"),
            total_incl_vat=breakdown.get("total_incl_vat"),
            currency=record.currency,
            paid_minor=record.captured_minor,
            card=card,
            final=record.settled_at is not None,
            refunds=refunds,
            refunded_minor=sum(amount for amount, _, _ in refunds),
            reference=receipt_reference(record.id),
            number=f"{record.receipt_no:06d}" if record.receipt_no is not None else None,
            operator=self.operator,
            time_zone=record.time_zone,
        )
