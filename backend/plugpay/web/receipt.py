"""The receipt: /r/{session_id}, printable (and so savable as PDF from the browser)."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from plugpay.web import format as fmt
from plugpay.web.context import OwnedSession, Receipts, page

Req = Request[Any, Any, Any]


@get("/r/{session_id:str}")
async def receipt_page(request: Req, session: OwnedSession, receipts: Receipts) -> Template:
    """Site, charger, times, meter, energy, each price line with VAT, total, payment
    method, and any refund."""
    details = await receipts.details(session)
    vat = fmt.vat_summary(details.lines, details.currency)
    return page(request, "receipt.html", record=session, receipt=details, vat=vat)


SESSION_ROUTES = [receipt_page]
