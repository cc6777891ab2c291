"""POST /webhooks/stripe: signed payment provider events."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.response import Response

from plugpay.services.ports import PaymentUnavailable
from plugpay.services.webhooks import InvalidWebhook


@post("/webhooks/stripe", include_in_schema=False, status_code=200)
async def stripe_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    """Verify the signature on the raw body; store the event by id; act once."""
    body = await request.body()
    webhooks = request.app.state.runtime.services.webhooks
    try:
        outcome = await webhooks.receive(body, request.headers.get("stripe-signature"))
    except InvalidWebhook as exc:
        return Response({"error": str(exc) or "invalid signature"}, status_code=400)
    except PaymentUnavailable:
        # Stripe delivers the event again later, when the PaymentIntent can be read.
        return Response({"error": "payment provider unavailable"}, status_code=503)
    return Response({"status": outcome}, status_code=200)


ROUTES = [stripe_webhook]
