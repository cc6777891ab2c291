"""Security headers on every HTTP response, whichever layer made it.

Litestar's ``response_headers`` reach only what route handlers return: the
router's own 404 and 405, the CSRF middleware's 403 and the responses built
from exceptions leave without them. Litestar's ``before_send`` hooks wrap the
``send`` the server hands the app, outside the router, every middleware and
the outermost exception handler, so a hook sees every ``http.response.start``
the app sends. WebSocket messages (the OCPP gateway) pass through untouched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

from litestar.types import Message, Scope

# No inline scripts anywhere; Stripe's script, frames and API are the only other origins.
CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' https://js.stripe.com",
        "frame-src https://js.stripe.com https://hooks.stripe.com https://pay.google.com",
        "connect-src 'self' https://api.stripe.com https://r.stripe.com",
        "img-src 'self' data: https://*.stripe.com",
        "style-src 'self' 'unsafe-inline'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
# Stripe's wallets (Apple Pay, Google Pay) call the Payment Request API from
# the frames the CSP lets in; nothing here needs a camera, microphone or location.
PERMISSIONS_POLICY: Final = (
    'camera=(), microphone=(), geolocation=(), payment=(self "https://js.stripe.com" '
    '"https://pay.google.com")'
)
STRICT_TRANSPORT_SECURITY: Final = "max-age=63072000; includeSubDomains"
# Google Pay outside Chrome completes in a pop-up that reports back to its
# opener; "same-origin" would cut that link, so the payment pages allow pop-ups.
OPENER_POLICY: Final = "same-origin"
PAYMENT_OPENER_POLICY: Final = "same-origin-allow-popups"
PAYMENT_PATHS: Final = "/pay/"

Header = tuple[bytes, bytes]
BeforeSend = Callable[[Message, Scope], Awaitable[None]]


def is_local_host(host: str) -> bool:
    """localhost, its subdomains and loopback addresses: never behind real TLS."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def uses_hsts(public_url: str) -> bool:
    """HSTS pins browsers to https for two years: only for a real https origin."""
    parts = urlsplit(public_url)
    return parts.scheme == "https" and not is_local_host(parts.hostname or "localhost")


def baseline_headers(public_url: str) -> list[Header]:
    """What every response carries unless its handler set the header itself."""
    headers = {
        "content-security-policy": CONTENT_SECURITY_POLICY,
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "x-frame-options": "DENY",
        "permissions-policy": PERMISSIONS_POLICY,
    }
    if uses_hsts(public_url):
        headers["strict-transport-security"] = STRICT_TRANSPORT_SECURITY
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def security_headers(public_url: str) -> BeforeSend:
    """A ``before_send`` hook adding the baseline headers to every HTTP response."""
    baseline = baseline_headers(public_url)
    opener = (b"cross-origin-opener-policy", OPENER_POLICY.encode("latin-1"))
    payment_opener = (b"cross-origin-opener-policy", PAYMENT_OPENER_POLICY.encode("latin-1"))

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", ()))
        present = {name.lower() for name, _ in headers}
        payment_page = scope.get("path", "").startswith(PAYMENT_PATHS)
        for header in (*baseline, payment_opener if payment_page else opener):
            if header[0] not in present:
                headers.append(header)
        message["headers"] = headers

    return add_headers
