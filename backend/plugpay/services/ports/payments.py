"""The payment provider: holds, captures, releases and its webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """Pre-authorise ``amount_minor`` (manual capture) for one charging session."""

    session_id: str
    amount_minor: int
    currency: str  # ISO 4217, upper case
    description: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class PaymentState:
    """What the payment provider says about a hold; provider objects never leave payments/."""

    ref: str  # Stripe PaymentIntent id, or the demo provider's id
    status: str  # requires_payment_method | requires_confirmation | requires_action |
    #              processing | requires_capture | canceled | succeeded
    amount_minor: int
    currency: str
    client_secret: str | None = None
    amount_received_minor: int = 0
    card_brand: str | None = None
    card_last4: str | None = None
    decline_message: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    payment_ref: str | None
    created: int


class InvalidWebhook(Exception):
    """Signature missing, wrong or too old; or a body that is not an event."""


class PaymentGateway(Protocol):
    name: str  # "stripe" | "demo"
    publishable_key: str | None

    async def create_hold(self, request: HoldRequest) -> PaymentState: ...
    async def get(self, ref: str) -> PaymentState: ...
    async def client_secret(self, ref: str) -> str | None:
        """What the browser needs to confirm the hold (remembered from create_hold)."""
        ...

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        """Capture ``amount_minor`` (> 0) of the hold; the rest is released."""
        ...

    async def cancel(self, ref: str, idempotency_key: str) -> PaymentState:
        """Release the whole hold."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify the signature on the raw body; raise InvalidWebhook."""
        ...


class PaymentUnavailable(Exception):
    """The provider could not be reached or answered 5xx: retry later, same idempotency key."""


class PaymentDeclined(Exception):
    """The provider refused the operation for good (message fit for the driver)."""


class DemoCardForm(Protocol):
    """The demo provider's stand-in for the card form (only when no Stripe keys are set)."""

    async def confirm(self, ref: str, card: str) -> PaymentState: ...
    async def authenticate(self, ref: str, ok: bool) -> PaymentState: ...
