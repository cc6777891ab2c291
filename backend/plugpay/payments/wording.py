"""The plain words a driver reads when a payment goes wrong, shared by every provider.

Stripe's own messages are written for developers as often as for cardholders;
the driver sees these instead, chosen by Stripe's error code. Lost, stolen and
fraud declines read as a plain decline, as Stripe advises.
"""

from __future__ import annotations

DECLINED = "Your card was declined."
AUTHENTICATION_FAILED = "Your card could not be verified by your bank."
NOT_AUTHORISED = "This payment was not authorised."
ALREADY_CAPTURED = "This payment was already taken."
ALREADY_RELEASED = "This payment hold was already released."
CAPTURE_REFUSED = "The payment could not be taken."
UNKNOWN_PAYMENT = "This payment does not exist."
REFUSED = "The payment provider refused the request."
NOT_AWAITING_AUTHENTICATION = "This payment is not waiting for verification."
AUTHENTICATION_REQUIRED = "Your bank asks you to confirm this payment."
NOT_CAPTURED = "This payment was not taken, so there is nothing to refund."
REFUND_EXCEEDS = "The refund is more than what is left of the payment."
ALREADY_REFUNDED = "This payment was already refunded in full."
DISPUTED = "This payment is disputed by the cardholder and cannot be refunded."
UNKNOWN_REFUND = "This refund does not exist."
UNKNOWN_CUSTOMER = "This customer does not exist."
UNKNOWN_CARD = "This saved card does not exist."
UNKNOWN_SETUP = "This card registration does not exist."
CARD_NOT_SAVED = "This card is not saved for this customer."
SETUP_REFUSED = "This card registration cannot be changed any more."

_BY_CODE = {
    "card_declined": DECLINED,
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "invalid_cvc": "Your card's security code is incorrect.",
    "incorrect_number": "Your card number is incorrect.",
    "invalid_number": "Your card number is incorrect.",
    "invalid_expiry_month": "Your card's expiry date is incorrect.",
    "invalid_expiry_year": "Your card's expiry date is incorrect.",
    "processing_error": "Your card could not be processed. Please try again.",
    "card_velocity_exceeded": "Your card has reached its spending limit.",
    "withdrawal_count_limit_exceeded": "Your card has reached its spending limit.",
    "payment_intent_authentication_failure": AUTHENTICATION_FAILED,
    "authentication_required": AUTHENTICATION_REQUIRED,
    "setup_intent_authentication_failure": AUTHENTICATION_FAILED,
}

# Refusals of a refund, by Stripe's error code.
_REFUND_BY_CODE = {
    "amount_too_large": REFUND_EXCEEDS,
    "charge_already_refunded": ALREADY_REFUNDED,
    "charge_disputed": DISPUTED,
}


def decline_message(code: str | None, decline_code: str | None = None) -> str:
    """Words for a card error: the issuer's reason when it is one a driver can act
    on, else the error code's, else a plain decline."""
    for key in (decline_code, code):
        if key is not None and key in _BY_CODE:
            return _BY_CODE[key]
    return DECLINED


def refusal(status: str, fallback: str = REFUSED) -> str:
    """Words for a capture or release refused because of where the payment stands."""
    if status == "succeeded":
        return ALREADY_CAPTURED
    if status == "canceled":
        return ALREADY_RELEASED
    if status in ("requires_payment_method", "requires_confirmation", "requires_action"):
        return NOT_AUTHORISED
    if status == "requires_capture":
        return CAPTURE_REFUSED
    return fallback


def refund_refusal(code: str | None, fallback: str = REFUSED) -> str:
    """Words for a refund the provider refused, by its error code."""
    return _REFUND_BY_CODE.get(code or "", fallback)
