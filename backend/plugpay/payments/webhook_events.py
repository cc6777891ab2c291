"""Stripe-style webhook bodies and signatures, for every provider.

A signature header reads ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``,
as Stripe signs its webhooks; the demo provider signs its events the same way, so
one webhook intake serves both. The envelope is decoded, the event's object is
read for the PaymentIntent it concerns, and for the few fields routing by type
needs (payments/event_details.py); the intake still re-reads the provider
rather than trusting what an event says.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import msgspec

from plugpay.payments.event_details import Ref, event_details, ref_id
from plugpay.services.ports import InvalidWebhook, WebhookEvent

# How old a signed event may be (seconds), against replays of captured requests.
SIGNATURE_TOLERANCE = 300
SIGNATURE_SCHEME = "v1"


class _EventData(msgspec.Struct):
    object: msgspec.Raw


class _Object(msgspec.Struct):
    """What every event's object tells: its kind, and the PaymentIntent it concerns."""

    object: str | None = None
    id: str | None = None
    payment_intent: str | Ref | None = None


class _Event(msgspec.Struct):
    id: str
    type: str
    created: int
    data: _EventData
    object: str = "event"


def decode_event(payload: bytes) -> WebhookEvent:
    """The event in a verified webhook body; InvalidWebhook if it is not one."""
    try:
        event = msgspec.json.decode(payload, type=_Event)
    except msgspec.DecodeError as exc:
        raise InvalidWebhook("the body is not an event") from exc
    if event.object != "event":
        raise InvalidWebhook("the body is not an event")
    try:
        obj = msgspec.json.decode(event.data.object, type=_Object)
    except msgspec.DecodeError as exc:
        raise InvalidWebhook("the event's object is not an object") from exc
    return WebhookEvent(
        id=event.id,
        type=event.type,
        payment_ref=obj.id if obj.object == "payment_intent" else ref_id(obj.payment_intent),
        created=event.created,
        body=payload,
        details=event_details(event.type, event.data.object),
    )


def payment_ref_of(obj: dict[str, Any]) -> str | None:
    """The PaymentIntent an event's object concerns: the intent itself, or the one
    a charge (or refund, dispute…) belongs to."""
    if obj.get("object") == "payment_intent":
        ref = obj.get("id")
        return ref if isinstance(ref, str) else None
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return intent if isinstance(intent, str) else None


def _mac(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The signature header for ``payload``, as Stripe writes it."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},{SIGNATURE_SCHEME}={_mac(payload, secret, at)}"


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    tolerance: int = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise InvalidWebhook unless ``header`` signs ``payload`` with ``secret``
    within ``tolerance`` seconds of ``now``."""
    if not header:
        raise InvalidWebhook("no signature")
    if not secret:
        raise InvalidWebhook("no webhook secret is configured")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SIGNATURE_SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidWebhook("malformed signature header")
    expected = _mac(payload, secret, timestamp)
    if not any(
        hmac.compare_digest(expected.encode(), s.encode(errors="replace")) for s in signatures
    ):
        raise InvalidWebhook("signature does not match")
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise InvalidWebhook("signature is too old")
