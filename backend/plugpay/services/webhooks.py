"""Payment provider webhooks: verify, store by id before acting, never trust their order.

An event only tells us *that* something changed; what changed is re-read
from the provider (``confirm_payment`` reads the PaymentIntent), so a late,
repeated or out-of-order event cannot move a session the wrong way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from plugpay.domain.session import SessionState
from plugpay.services.ports import InvalidWebhook, SessionStore
from plugpay.services.sessions import SessionService

log = logging.getLogger(__name__)

# Events that may mean a hold became usable or unusable.
PAYMENT_EVENTS = frozenset(
    {
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.requires_action",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.captured",
        "charge.refunded",
    }
)


# Sessions whose charge is (about to be) running on the hold.
RUNNING = frozenset({SessionState.STARTING, SessionState.CHARGING, SessionState.STOPPING})


@dataclass
class WebhookService:
    sessions: SessionService
    store: SessionStore

    async def receive(self, payload: bytes, signature: str | None) -> str:
        """Returns "processed", "replay" or "ignored"; raises InvalidWebhook (nothing stored),
        or PaymentUnavailable when the provider could not be asked (the provider retries)."""
        event = self.sessions.payments.parse_webhook(payload, signature)
        if not await self.store.record_webhook_event(event, self.sessions.payments.name):
            return "replay"
        outcome = "ignored"
        if event.type in PAYMENT_EVENTS and event.payment_ref:
            record = await self.store.by_payment_ref(event.payment_ref)
            if record is not None:
                outcome = "processed"
                if record.state == SessionState.CREATED:
                    await self.sessions.confirm_payment(record.id)
                elif (
                    event.type == "payment_intent.canceled"
                    and record.state in RUNNING
                    and await self._hold_is_gone(event.payment_ref)
                ):
                    # The hold vanished under a running charge (expired, canceled in
                    # the dashboard): stop charging; the money needs a person.
                    log.error("session %s: hold canceled by the provider while charging", record.id)
                    await self.sessions.stop(record.id, reason="hold_canceled_by_provider")
        await self.store.webhook_processed(event.id)
        return outcome

    async def _hold_is_gone(self, payment_ref: str) -> bool:
        """Whether the hold is really released: the event alone is not trusted."""
        return (await self.sessions.payments.get(payment_ref)).status == "canceled"


__all__ = ["InvalidWebhook", "WebhookService"]
