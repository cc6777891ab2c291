"""POST /webhooks/stripe: signed payment provider events."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.response import Response

from plugpay.services.ports import InvalidWebhook
from plugpay.services.webhooks import WebhookService


@post("/webhooks/stripe", include_in_schema=False, status_code=200)
async def stripe_webhook(
    request: Request[Any, Any, Any], webhooks: NamedDependency[WebhookService]
) -> Response[dict[str, str]]:
    """Verify the signature on the raw body; keep the event with its body by id; it is
    acted on from the job queue (retried there, so the provider need not send it again)."""
    body = await request.body()
    try:
        outcome = await webhooks.receive(body, request.headers.get("stripe-signature"))
    except InvalidWebhook as exc:
        return Response({"error": str(exc) or "invalid signature"}, status_code=400)
    return Response({"status": outcome}, status_code=200)


ROUTES = [stripe_webhook]
