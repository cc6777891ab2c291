"""Saved cards at Stripe: customers, SetupIntents for off-session use, and holds on a
saved card confirmed without the driver."""

from __future__ import annotations

from dataclasses import replace

import stripe

from plugpay.payments import wording
from plugpay.payments.stripe_amounts import to_stripe_amount
from plugpay.payments.stripe_base import StripeBase
from plugpay.payments.stripe_objects import (
    EXPAND,
    intent_state,
    method_customer,
    saved_method,
    setup_state,
)
from plugpay.services.ports.payments import (
    HoldRequest,
    PaymentDeclined,
    PaymentState,
    SavedMethod,
    SetupState,
)

# Off-session holds are card holds (wallets save cards too): a payment method that
# redirects, or debits a bank account, has no manual capture and no driver to come
# back from a redirect. ``allowed_payment_method_types`` is the API's way to say
# so since ``payment_method_types`` stopped being writable (2026-09-30.endive);
# localstripe knows neither, and saves and charges cards only.
CARD = "card"

# A driver with more saved cards than this is not a driver.
METHODS_LISTED = 100


class StripeCards(StripeBase):
    async def create_customer(self, reference: str, email: str | None, idempotency_key: str) -> str:
        params: stripe.params.CustomerCreateParams = {"metadata": {"plugpay_reference": reference}}
        if email:
            params["email"] = email
        customer = await self._request(
            lambda: self._client.v1.customers.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        )
        return customer.id

    async def create_setup(self, customer_ref: str, idempotency_key: str) -> SetupState:
        """A SetupIntent that saves a card for holds made while the driver is away
        (``usage=off_session``: Stripe asks for the bank's check now, when the
        driver can answer it)."""
        params: stripe.params.SetupIntentCreateParams = {
            "customer": customer_ref,
            "usage": "off_session",
            "expand": ["payment_method"],
        }
        if not self._localstripe:
            params["allowed_payment_method_types"] = [CARD]
        setup = await self._request(
            lambda: self._client.v1.setup_intents.create_async(
                params, {"idempotency_key": idempotency_key}
            ),
            wording.UNKNOWN_CUSTOMER,
        )
        return setup_state(setup)

    async def get_setup(self, ref: str) -> SetupState:
        setup = await self._request(
            lambda: self._client.v1.setup_intents.retrieve_async(
                ref, {"expand": ["payment_method"]}
            ),
            wording.UNKNOWN_SETUP,
        )
        return setup_state(setup)

    async def list_methods(self, customer_ref: str) -> list[SavedMethod]:
        methods = await self._request(
            lambda: self._client.v1.payment_methods.list_async(
                {"customer": customer_ref, "type": "card", "limit": METHODS_LISTED}
            ),
            wording.UNKNOWN_CUSTOMER,
        )
        return [saved_method(method) for method in methods.data]

    async def detach_method(self, method_ref: str) -> None:
        """Forget a saved card. Stripe refuses to detach a card that is attached to
        no customer: that is a repeat, and done."""
        try:
            await self._request(
                lambda: self._client.v1.payment_methods.detach_async(method_ref),
                wording.UNKNOWN_CARD,
            )
        except PaymentDeclined as refused:
            method = await self._request(
                lambda: self._client.v1.payment_methods.retrieve_async(method_ref),
                wording.UNKNOWN_CARD,
            )
            if method_customer(method) is not None:
                raise PaymentDeclined(str(refused)) from refused.__cause__

    async def delete_customer(self, customer_ref: str) -> None:
        """Delete the customer (Stripe detaches its cards). A customer Stripe does
        not know (deleted already) is done."""
        try:
            await self._request(
                lambda: self._client.v1.customers.delete_async(customer_ref),
                wording.UNKNOWN_CUSTOMER,
            )
        except PaymentDeclined:
            return

    async def create_off_session_hold(
        self, request: HoldRequest, customer_ref: str, method_ref: str
    ) -> PaymentState:
        """A manual-capture PaymentIntent on a saved card, confirmed at once with
        ``off_session=true``.

        When the bank wants the driver, Stripe answers a card error
        ``authentication_required`` and leaves the intent waiting for a payment
        method (a stand-in may instead leave it in requires_action): either way the
        answer is requires_action with the client secret, for the driver's browser
        to confirm the hold with the saved card. Any other card error is a decline.
        """
        if request.amount_minor <= 0:
            raise ValueError("a hold must be for a positive amount")
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": to_stripe_amount(request.amount_minor, request.currency),
            "currency": request.currency.lower(),
            "capture_method": "manual",
            "customer": customer_ref,
            "payment_method": method_ref,
            "confirm": True,
            "off_session": True,
            "metadata": {"plugpay_session": request.session_id},
            "expand": EXPAND,
        }
        if not self._localstripe:
            params["allowed_payment_method_types"] = [CARD]
            params["description"] = request.description
        waiting = None
        try:
            intent = await self._request(
                lambda: self._intents.create_async(
                    params, {"idempotency_key": request.idempotency_key}
                )
            )
        except PaymentDeclined as declined:
            waiting = _awaiting_authentication(declined.__cause__)
            if waiting is None:
                raise
            intent = waiting
        state = intent_state(intent)
        if waiting is not None:
            state = replace(state, status="requires_action")
        if state.status == "requires_action":
            state = replace(state, decline_message=wording.AUTHENTICATION_REQUIRED)
        elif state.status not in ("requires_capture", "processing", "succeeded"):
            raise PaymentDeclined(state.decline_message or wording.DECLINED, payment_ref=state.ref)
        return self._remember(state)


def _awaiting_authentication(cause: BaseException | None) -> stripe.PaymentIntent | None:
    """The intent of a card error that asks for the driver's authentication."""
    if not isinstance(cause, stripe.CardError) or cause.error is None:
        return None
    error = cause.error
    if "authentication_required" not in (error.code, error.decline_code):
        return None
    return error.payment_intent
