"""The payment provider: holds, captures, releases, saved cards, refunds and its webhooks.

Every amount that crosses this port is in ISO 4217 minor units of its currency
(as :class:`plugpay.domain.money.Money` keeps them); a provider converts to its
own units inside its adapter.
"""

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
class SetupState:
    """A card being saved for later off-session holds (a Stripe SetupIntent).

    ``status`` is requires_payment_method (a declined card leaves it there, with
    ``decline_message``), requires_action (the bank's check, in the browser),
    processing, succeeded (``method_ref`` is the saved card) or canceled.
    """

    ref: str
    status: str
    customer_ref: str
    client_secret: str | None = None
    method_ref: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    decline_message: str | None = None


@dataclass(frozen=True, slots=True)
class SavedMethod:
    """A card saved on a customer, usable for off-session holds."""

    ref: str
    customer_ref: str
    card_brand: str | None = None
    card_last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


@dataclass(frozen=True, slots=True)
class RefundState:
    """Money given back from a captured payment.

    ``status`` is pending | requires_action | succeeded | failed | canceled, as
    Stripe says; only succeeded money has left, and a pending refund may fail.
    """

    ref: str
    payment_ref: str
    amount_minor: int
    currency: str
    status: str
    reason: str | None = None


# -- what a webhook event carries, by type ----------------------------------------------
@dataclass(frozen=True, slots=True)
class RefundDetails:
    """``refund.created`` / ``refund.updated`` / ``refund.failed`` /
    ``charge.refund.updated``: one refund."""

    ref: str
    amount_minor: int
    currency: str
    status: str | None
    charge_ref: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeRefundedDetails:
    """``charge.refunded``: the charge's refund total, and the refunds the event
    lists (Stripe lists none since API version 2022-11-15: read them with
    :meth:`PaymentGateway.list_refunds`)."""

    charge_ref: str
    currency: str
    amount_captured_minor: int
    amount_refunded_minor: int
    refunds: tuple[RefundDetails, ...] = ()


@dataclass(frozen=True, slots=True)
class DisputeDetails:
    """``charge.dispute.*``: the dispute as the event tells it."""

    ref: str
    amount_minor: int
    currency: str
    status: str
    reason: str | None
    charge_ref: str | None = None


@dataclass(frozen=True, slots=True)
class IntentDetails:
    """``payment_intent.*``: ``cancellation_reason`` is "automatic" for a hold that
    expired uncaptured, "requested_by_customer" for one canceled on request, …"""

    status: str | None
    cancellation_reason: str | None = None


@dataclass(frozen=True, slots=True)
class SetupDetails:
    """``setup_intent.*``: the setup, and the card it saved once it succeeded."""

    setup_ref: str
    status: str | None
    customer_ref: str | None = None
    method_ref: str | None = None


EventDetails = RefundDetails | ChargeRefundedDetails | DisputeDetails | IntentDetails | SetupDetails


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook event: enough to store it (``body`` is the signed raw body,
    byte for byte) and to route it by type (``details``, None for other types). The
    details say what the event reports; act on what the provider says when re-read."""

    id: str
    type: str
    payment_ref: str | None
    created: int
    body: bytes = b""
    details: EventDetails | None = None

    @property
    def body_text(self) -> str:
        """The body as text (a verified body is UTF-8 JSON)."""
        return self.body.decode()


class InvalidWebhook(Exception):
    """Signature missing, wrong or too old; or a body that is not an event."""


class PaymentGateway(Protocol):
    """The payment provider. Failures are PaymentUnavailable (retry later with the
    same idempotency key) or PaymentDeclined (final); an amount the provider cannot
    take in its currency raises AmountNotRepresentable before any request."""

    name: str  # "stripe" | "demo"
    publishable_key: str | None

    async def create_hold(self, request: HoldRequest) -> PaymentState: ...
    async def get(self, ref: str) -> PaymentState: ...
    async def client_secret(self, ref: str) -> str | None:
        """What the browser needs to confirm the hold (remembered from create_hold)."""
        ...

    async def capture(self, ref: str, amount_minor: int, idempotency_key: str) -> PaymentState:
        """Capture ``amount_minor`` (> 0) of the hold; the rest is released. A repeat
        of a capture that happened (same amount) answers the captured state."""
        ...

    async def cancel(self, ref: str, idempotency_key: str) -> PaymentState:
        """Release the whole hold; releasing a released hold answers its state."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Verify the signature on the raw body; raise InvalidWebhook."""
        ...

    # -- saved cards ------------------------------------------------------------------
    async def create_customer(self, reference: str, email: str | None, idempotency_key: str) -> str:
        """A customer at the provider for plugpay's ``reference`` (e.g. an account id);
        returns its ref."""
        ...

    async def create_setup(self, customer_ref: str, idempotency_key: str) -> SetupState:
        """Start saving a card for off-session use; the browser confirms it with
        ``client_secret``."""
        ...

    async def get_setup(self, ref: str) -> SetupState: ...
    async def list_methods(self, customer_ref: str) -> list[SavedMethod]:
        """The cards saved on the customer."""
        ...

    async def detach_method(self, method_ref: str) -> None:
        """Forget a saved card; forgetting a forgotten card is not an error."""
        ...

    async def delete_customer(self, customer_ref: str) -> None:
        """Forget the customer and every card saved on it (an account deleted);
        forgetting a forgotten customer is not an error."""
        ...

    async def create_off_session_hold(
        self, request: HoldRequest, customer_ref: str, method_ref: str
    ) -> PaymentState:
        """A hold on a saved card, confirmed at once without the driver.

        requires_capture when authorised; requires_action (with ``client_secret``)
        when the bank wants the driver to authenticate: the driver confirms the hold
        in the browser with the saved card. A decline raises PaymentDeclined (its
        ``payment_ref`` names the hold when the provider made one).
        """
        ...

    # -- refunds ----------------------------------------------------------------------
    async def refund(
        self, ref: str, amount_minor: int, idempotency_key: str, reason: str | None = None
    ) -> RefundState:
        """Give back ``amount_minor`` (> 0) of the captured payment ``ref``, in one or
        several refunds. A repeated key answers the first refund. Refunds never exceed
        the capture: the excess is declined, and so is a payment not captured.
        ``reason`` is kept with the refund (duplicate, fraudulent and
        requested_by_customer are the provider's own reasons)."""
        ...

    async def get_refund(self, ref: str) -> RefundState: ...
    async def list_refunds(self, payment_ref: str) -> list[RefundState]:
        """Every refund of the payment, plugpay's and those made elsewhere
        (the provider's dashboard)."""
        ...


class PaymentUnavailable(Exception):
    """Try again later with the same idempotency key: the provider could not be
    reached, answered 5xx, rate-limited the request, or is still busy with (or
    disagrees about) an earlier request with the same idempotency key."""


class PaymentDeclined(Exception):
    """The provider refused the operation for good (message fit for the driver).

    ``payment_ref`` names the payment the refusal left behind, when there is one
    (a declined off-session hold)."""

    def __init__(self, message: str, payment_ref: str | None = None) -> None:
        super().__init__(message)
        self.payment_ref = payment_ref


class AmountNotRepresentable(ValueError):
    """The provider cannot take this amount in this currency (e.g. Stripe wants
    KWD amounts in whole tens of fils). ``step_minor`` is the multiple of minor
    units it takes, 0 when it takes none of this currency."""

    def __init__(self, message: str, currency: str, step_minor: int) -> None:
        super().__init__(message)
        self.currency = currency
        self.step_minor = step_minor


class DemoCardForm(Protocol):
    """The demo provider's stand-in for the card form (only when no Stripe keys are set)."""

    async def confirm(self, ref: str, card: str) -> PaymentState: ...
    async def authenticate(self, ref: str, ok: bool) -> PaymentState: ...


class DemoSetupForm(Protocol):
    """The demo provider's stand-in for the card form that saves a card.

    ``card`` is "approve" (saved), "decline" (refused, try another card),
    "authenticate" (the bank's check first: :meth:`authenticate_setup`; the saved
    card then asks for the driver's authentication on every off-session hold) or
    "decline_off_session" (saved, but every off-session hold on it is declined).
    """

    async def confirm_setup(self, ref: str, card: str) -> SetupState: ...
    async def authenticate_setup(self, ref: str, ok: bool) -> SetupState: ...
