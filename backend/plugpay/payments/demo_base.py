"""What every part of the demo provider shares: its records, its lock, its refs.

Every object is one JSON record in a :class:`DemoPaymentStore`, under its ref:
intents ``demo_pi_…``, customers ``demo_cus_…``, setups ``demo_seti_…``, saved
cards ``demo_pm_…``, refunds ``demo_re_…``; and ``demo_key:<idempotency key>``
records that map a creating request to what it created. Each record that a
request created keeps that request's fingerprint under "request", so a key
reused for another request is told apart from a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import asdict
from typing import Any, Protocol

from plugpay.payments import wording
from plugpay.payments.stripe_amounts import to_stripe_amount
from plugpay.services.ports.payments import PaymentDeclined, PaymentState, PaymentUnavailable

# The store's refs are at most this long (the demo_payments table).
REF_LENGTH = 64
KEY_PREFIX = "demo_key:"


class DemoPaymentStore(Protocol):
    """Durable key-value storage of JSON-serialisable dicts for the demo provider.

    Keys are the records' refs (``demo_pi_…``, ``demo_cus_…``, …) and
    ``demo_key:<idempotency key>`` records that map a request to what it made.
    """

    async def load(self, ref: str) -> dict[str, Any] | None: ...
    async def save(self, ref: str, data: dict[str, Any]) -> None: ...


class DemoBase:
    """The store, the lock and the request counter of the demo provider.

    ``api_calls`` counts the calls that would reach Stripe, as
    :class:`plugpay.payments.stripe_gateway.StripeGateway` does.
    """

    def __init__(self, store: DemoPaymentStore, webhook_secret: str | None = None) -> None:
        self.publishable_key: str | None = None
        self.api_calls = 0
        self._store = store
        self._webhook_secret = webhook_secret or secrets.token_hex(32)
        # One lock is plenty for a demo; it keeps a read-change-write atomic here.
        self._lock = asyncio.Lock()

    async def _record(self, ref: str, prefix: str, unknown: str) -> dict[str, Any]:
        """The record ``ref`` of the kind ``prefix``; declined in ``unknown`` words
        when there is none (a ref of another kind included)."""
        record = await self._store.load(ref) if ref.startswith(prefix) else None
        if record is None:
            raise PaymentDeclined(unknown)
        return record

    async def _made_by(self, idempotency_key: str, fingerprint: str) -> dict[str, Any] | None:
        """What an earlier request with this key made (its key record), if any; a
        key reused for another request is Stripe's idempotency error, which the
        port tells as "try again later" (Stripe forgets keys after 24 hours)."""
        known = await self._store.load(key_ref(idempotency_key))
        if known is None:
            return None
        made = await self._store.load(str(known["ref"]))
        if made is None or made.get("request") != fingerprint:
            raise PaymentUnavailable(
                f"the idempotency key {idempotency_key!r} went with another request"
            )
        return known

    async def _remember_key(self, idempotency_key: str, made: dict[str, Any]) -> None:
        await self._store.save(key_ref(idempotency_key), made)

    async def _intent(self, ref: str) -> dict[str, Any]:
        return await self._record(ref, "demo_pi_", wording.UNKNOWN_PAYMENT)


def key_ref(idempotency_key: str) -> str:
    """The ref of a key's record: the key itself, or its digest when too long."""
    ref = KEY_PREFIX + idempotency_key
    if len(ref) <= REF_LENGTH:
        return ref
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return (KEY_PREFIX + "#" + digest)[:REF_LENGTH]


def new_ref(prefix: str) -> str:
    """An unguessable ref: the refs are what the driver's pages carry."""
    return f"{prefix}{secrets.token_hex(12)}"


def check_amount(amount_minor: int, currency: str) -> None:
    """Refuse what Stripe would refuse: the demo must not take amounts that going
    live would turn down (KWD in fils not ending in 0, fractional ISK…)."""
    to_stripe_amount(amount_minor, currency)


def new_intent(
    ref: str, amount_minor: int, currency: str, *, status: str = "requires_payment_method"
) -> PaymentState:
    return PaymentState(
        ref=ref,
        status=status,
        amount_minor=amount_minor,
        currency=currency.upper(),
        client_secret=f"{ref}_secret_{secrets.token_hex(12)}",
    )


def intent_record(
    state: PaymentState, session_id: str, description: str, fingerprint: str
) -> dict[str, Any]:
    return {
        "state": asdict(state),
        "session_id": session_id,
        "description": description,
        "request": fingerprint,
        "replies": {},
    }


def state_of(record: dict[str, Any]) -> PaymentState:
    return PaymentState(**record["state"])
