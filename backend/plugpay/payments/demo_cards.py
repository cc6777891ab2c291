"""Saved cards at the demo provider: customers, setups confirmed on a demo card form,
and off-session holds on the saved cards, walking Stripe's states.

A setup starts in ``requires_payment_method``; ``confirm_setup(ref, card)``:

- "approve" saves a card (visa 4242) whose holds are authorised;
- "decline" refuses the card, the setup waits for another;
- "authenticate" asks for the bank's check (``requires_action``), then
  ``authenticate_setup(ref, ok)`` saves the card (visa 3155) or refuses it; the
  saved card asks for the driver's authentication on every off-session hold, as
  Stripe's test card 4000002760003184 (and localstripe's 3155) does;
- "decline_off_session" saves a card (visa 0341) whose every off-session hold is
  declined, as Stripe's test card 4000000000000341.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Literal, get_args

from plugpay.payments import wording
from plugpay.payments.demo_base import (
    DemoBase,
    check_amount,
    intent_record,
    new_intent,
    new_ref,
    state_of,
)
from plugpay.services.ports.payments import (
    HoldRequest,
    PaymentDeclined,
    PaymentState,
    SavedMethod,
    SetupState,
)

SetupCard = Literal["approve", "decline", "authenticate", "decline_off_session"]
SETUP_CARDS: tuple[str, ...] = get_args(SetupCard)

_SETUP_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")

# What an off-session hold on a saved card does, by the demo card that saved it;
# and the card's last four digits, after Stripe's test cards.
_CHARGES = {"approve": "approve", "authenticate": "authenticate", "decline_off_session": "decline"}
_LAST4 = {"approve": "4242", "authenticate": "3155", "decline_off_session": "0341"}


class DemoCards(DemoBase):
    async def create_customer(self, reference: str, email: str | None, idempotency_key: str) -> str:
        self.api_calls += 1
        fingerprint = f"customer:{reference}:{email or ''}"
        async with self._lock:
            known = await self._made_by(idempotency_key, fingerprint)
            if known is not None:
                return str(known["ref"])
            ref = new_ref("demo_cus_")
            record: dict[str, Any] = {
                "reference": reference,
                "email": email,
                "methods": [],
                "request": fingerprint,
            }
            await self._store.save(ref, record)
            await self._remember_key(idempotency_key, {"ref": ref})
        return ref

    async def create_setup(self, customer_ref: str, idempotency_key: str) -> SetupState:
        self.api_calls += 1
        fingerprint = f"setup:{customer_ref}"
        async with self._lock:
            known = await self._made_by(idempotency_key, fingerprint)
            if known is not None:
                return _setup(await self._setup(str(known["ref"])))
            await self._customer(customer_ref)
            ref = new_ref("demo_seti_")
            state = SetupState(
                ref=ref,
                status="requires_payment_method",
                customer_ref=customer_ref,
                client_secret=f"{ref}_secret_{new_ref('')}",
            )
            await self._store.save(ref, {"state": asdict(state), "request": fingerprint})
            await self._remember_key(idempotency_key, {"ref": ref})
        return state

    async def get_setup(self, ref: str) -> SetupState:
        self.api_calls += 1
        return _setup(await self._setup(ref))

    async def list_methods(self, customer_ref: str) -> list[SavedMethod]:
        self.api_calls += 1
        customer = await self._customer(customer_ref)
        methods = []
        for method_ref in customer["methods"]:
            record = await self._store.load(method_ref)
            if record is not None and record["attached"]:
                methods.append(SavedMethod(**record["method"]))
        return methods

    async def detach_method(self, method_ref: str) -> None:
        self.api_calls += 1
        async with self._lock:
            record = await self._method(method_ref)
            if not record["attached"]:
                return
            record["attached"] = False
            await self._store.save(method_ref, record)
            customer_ref = record["method"]["customer_ref"]
            customer = await self._customer(customer_ref)
            customer["methods"] = [m for m in customer["methods"] if m != method_ref]
            await self._store.save(customer_ref, customer)

    async def delete_customer(self, customer_ref: str) -> None:
        """The customer forgets who it was and its cards; it is unknown afterwards."""
        self.api_calls += 1
        async with self._lock:
            known = customer_ref.startswith("demo_cus_")
            record = await self._store.load(customer_ref) if known else None
            if record is None or record.get("deleted"):
                return
            for method_ref in record["methods"]:
                method = await self._store.load(method_ref)
                if method is not None:
                    await self._store.save(method_ref, {**method, "attached": False})
            await self._store.save(customer_ref, {"deleted": True, "methods": []})

    async def create_off_session_hold(
        self, request: HoldRequest, customer_ref: str, method_ref: str
    ) -> PaymentState:
        """A hold on a saved card, confirmed at once: authorised, waiting for the
        driver's authentication (then :meth:`authenticate`), or declined."""
        if request.amount_minor <= 0:
            raise ValueError("a hold must be for a positive amount")
        check_amount(request.amount_minor, request.currency)
        self.api_calls += 1
        fingerprint = (
            f"off_session:{request.session_id}:{request.amount_minor}:{request.currency}"
            f":{customer_ref}:{method_ref}"
        )
        async with self._lock:
            known = await self._made_by(request.idempotency_key, fingerprint)
            if known is not None:
                if "declined" in known:
                    raise PaymentDeclined(known["declined"], payment_ref=known["ref"])
                return state_of(await self._intent(str(known["ref"])))
            method = await self._method(method_ref)
            saved = SavedMethod(**method["method"])
            if not method["attached"] or saved.customer_ref != customer_ref:
                raise PaymentDeclined(wording.CARD_NOT_SAVED)
            state = _charged(
                new_intent(new_ref("demo_pi_"), request.amount_minor, request.currency),
                saved,
                method["charges"],
            )
            record = intent_record(state, request.session_id, request.description, fingerprint)
            record["customer_ref"] = customer_ref
            record["method_ref"] = method_ref
            await self._store.save(state.ref, record)
            made: dict[str, Any] = {"ref": state.ref}
            if state.status == "requires_payment_method":
                made["declined"] = state.decline_message
            await self._remember_key(request.idempotency_key, made)
        if state.status == "requires_payment_method":
            raise PaymentDeclined(state.decline_message or wording.DECLINED, payment_ref=state.ref)
        return state

    # -- the driver's side (what Stripe.js does for Stripe) --------------------
    async def confirm_setup(self, ref: str, card: str) -> SetupState:
        """Save a demo card on the setup (see the module's docstring)."""
        if card not in SETUP_CARDS:
            raise ValueError(f"unknown demo card {card!r}; one of {', '.join(SETUP_CARDS)}")
        async with self._lock:
            record = await self._setup(ref)
            state = _setup(record)
            if state.status not in _SETUP_CONFIRMABLE:
                raise PaymentDeclined(wording.SETUP_REFUSED)
            if card == "decline":
                state = _setup_declined(state, wording.DECLINED)
            elif card == "authenticate":
                state = replace(state, status="requires_action", decline_message=None)
            else:
                state = await self._save_card(state, card)
            record["state"] = asdict(state)
            await self._store.save(ref, record)
        return state

    async def authenticate_setup(self, ref: str, ok: bool) -> SetupState:
        """The bank's verification of an "authenticate" card: passed or failed."""
        async with self._lock:
            record = await self._setup(ref)
            state = _setup(record)
            if state.status != "requires_action":
                raise PaymentDeclined(wording.NOT_AWAITING_AUTHENTICATION)
            if ok:
                state = await self._save_card(state, "authenticate")
            else:
                state = _setup_declined(state, wording.AUTHENTICATION_FAILED)
            record["state"] = asdict(state)
            await self._store.save(ref, record)
        return state

    # -- records ------------------------------------------------------------------
    async def _save_card(self, state: SetupState, card: str) -> SetupState:
        """Attach a new saved card to the setup's customer (inside the lock)."""
        customer = await self._customer(state.customer_ref)
        method = SavedMethod(
            ref=new_ref("demo_pm_"),
            customer_ref=state.customer_ref,
            card_brand="visa",
            card_last4=_LAST4[card],
            exp_month=12,
            exp_year=2034,
        )
        record = {"method": asdict(method), "charges": _CHARGES[card], "attached": True}
        await self._store.save(method.ref, record)
        customer["methods"] = [*customer["methods"], method.ref]
        await self._store.save(state.customer_ref, customer)
        return replace(
            state,
            status="succeeded",
            method_ref=method.ref,
            card_brand=method.card_brand,
            card_last4=method.card_last4,
            decline_message=None,
        )

    async def _customer(self, ref: str) -> dict[str, Any]:
        record = await self._record(ref, "demo_cus_", wording.UNKNOWN_CUSTOMER)
        if record.get("deleted"):
            raise PaymentDeclined(wording.UNKNOWN_CUSTOMER)
        return record

    async def _setup(self, ref: str) -> dict[str, Any]:
        return await self._record(ref, "demo_seti_", wording.UNKNOWN_SETUP)

    async def _method(self, ref: str) -> dict[str, Any]:
        return await self._record(ref, "demo_pm_", wording.UNKNOWN_CARD)


def _setup(record: dict[str, Any]) -> SetupState:
    return SetupState(**record["state"])


def _setup_declined(state: SetupState, message: str) -> SetupState:
    return replace(
        state,
        status="requires_payment_method",
        method_ref=None,
        card_brand=None,
        card_last4=None,
        decline_message=message,
    )


def _charged(state: PaymentState, method: SavedMethod, charges: str) -> PaymentState:
    """The hold after its off-session confirmation on ``method``."""
    if charges == "decline":
        return replace(state, decline_message=wording.DECLINED)
    state = replace(state, card_brand=method.card_brand, card_last4=method.card_last4)
    if charges == "authenticate":
        return replace(
            state, status="requires_action", decline_message=wording.AUTHENTICATION_REQUIRED
        )
    return replace(state, status="requires_capture")
