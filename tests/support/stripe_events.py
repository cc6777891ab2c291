"""Signed Stripe-style webhooks built in the test, for the events localstripe never
sends (payment_intent.amount_capturable_updated, payment_intent.canceled, charge.*).

Written from Stripe's documented scheme, independently of plugpay's own signing
code: header ``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_body(
    event_type: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None
) -> bytes:
    event = {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }
    return json.dumps(event, indent=2).encode()


def payment_intent_object(
    intent_id: str,
    status: str,
    amount: int,
    *,
    amount_capturable: int = 0,
    amount_received: int = 0,
) -> dict[str, Any]:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": amount_capturable,
        "amount_received": amount_received,
        "capture_method": "manual",
        "currency": "eur",
        "status": status,
        "metadata": {"plugpay_session": "s-test"},
    }


def charge_object(intent_id: str, amount: int, *, captured: bool) -> dict[str, Any]:
    return {
        "id": f"ch_{secrets.token_hex(8)}",
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if captured else 0,
        "captured": captured,
        "currency": "eur",
        "payment_intent": intent_id,
        "status": "succeeded",
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
    }


def signed_event(
    event_type: str,
    obj: dict[str, Any],
    secret: str,
    *,
    signed_at: int | None = None,
    event_id: str | None = None,
) -> tuple[bytes, str]:
    """(raw body, Stripe-Signature header) of an event about ``obj``."""
    body = event_body(event_type, obj, event_id=event_id, created=signed_at)
    return body, sign(body, secret, signed_at)


# -- objects of the events that refunds, disputes and saved cards bring -----------------
def refund_object(
    intent_id: str,
    amount: int,
    *,
    status: str = "succeeded",
    charge_id: str = "ch_1",
    currency: str = "eur",
    refund_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": refund_id or f"re_{secrets.token_hex(8)}",
        "object": "refund",
        "amount": amount,
        "charge": charge_id,
        "currency": currency,
        "payment_intent": intent_id,
        "reason": None,
        "status": status,
        "metadata": {},
    }


def refunded_charge_object(
    intent_id: str,
    captured: int,
    refunds: list[dict[str, Any]],
    *,
    currency: str = "eur",
    listed: bool = True,
) -> dict[str, Any]:
    """A captured charge with ``refunds``; ``listed=False`` leaves the refund list
    out, as Stripe does since API version 2022-11-15."""
    charge = {
        "id": f"ch_{secrets.token_hex(8)}",
        "object": "charge",
        "amount": captured,
        "amount_captured": captured,
        "amount_refunded": sum(r["amount"] for r in refunds),
        "captured": True,
        "refunded": sum(r["amount"] for r in refunds) >= captured,
        "currency": currency,
        "payment_intent": intent_id,
        "status": "succeeded",
    }
    if listed:
        charge["refunds"] = {"object": "list", "data": refunds, "has_more": False}
    return charge


def dispute_object(
    intent_id: str,
    amount: int,
    *,
    status: str = "needs_response",
    reason: str = "fraudulent",
    currency: str = "eur",
    dispute_id: str = "dp_1",
) -> dict[str, Any]:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "charge": "ch_1",
        "currency": currency,
        "payment_intent": intent_id,
        "reason": reason,
        "status": status,
    }


def canceled_intent_object(intent_id: str, amount: int, reason: str) -> dict[str, Any]:
    """A hold canceled by Stripe or in the Dashboard: ``reason`` is its
    ``cancellation_reason`` ("automatic" for a hold that expired uncaptured)."""
    return {
        **payment_intent_object(intent_id, "canceled", amount),
        "cancellation_reason": reason,
    }


def setup_intent_object(
    setup_id: str, status: str, *, customer: str = "cus_1", payment_method: str | None = None
) -> dict[str, Any]:
    return {
        "id": setup_id,
        "object": "setup_intent",
        "customer": customer,
        "payment_method": payment_method,
        "status": status,
        "usage": "off_session",
    }
